package mail

import (
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
)

// The two emails of the accounts feature. Each carries the clinic's name and
// a link, and nothing about the patient (PRODUCT.md: emails carry no PHI).
// They leave To and ID empty for the caller to set.

// Invitation is the email inviting someone to the clinic's patient portal;
// link is PORTAL_PUBLIC_URL + "/invite?token=…", valid 24 hours until expires.
func Invitation(clinicName, link string, expires time.Time) Message {
	return render(invitationTemplates, "%s invites you to its patient portal", clinicName, link, expires)
}

// PasswordReset is the email with a link to choose a new password; link is
// PORTAL_PUBLIC_URL + "/reset-password?token=…", valid 1 hour until expires.
func PasswordReset(clinicName, link string, expires time.Time) Message {
	return render(resetTemplates, "Reset your %s patient portal password", clinicName, link, expires)
}

type templates struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

type templateData struct {
	Subject string
	Clinic  string
	Link    string
	Expires string // "Monday 2 January 2006 at 15:04 UTC"; empty when unknown
}

func render(t templates, subject, clinicName, link string, expires time.Time) Message {
	d := templateData{Clinic: cleanClinicName(clinicName), Link: strings.TrimSpace(link)}
	d.Subject = strings.Replace(subject, "%s", d.Clinic, 1)
	if !expires.IsZero() {
		d.Expires = expires.UTC().Format("Monday 2 January 2006 at 15:04 UTC")
	}
	var text, html strings.Builder
	// The templates are fixed and their data is strings: executing them
	// cannot fail, short of a bug that every test would show.
	if err := t.text.Execute(&text, d); err != nil {
		panic("mail: text template: " + err.Error())
	}
	if err := t.html.Execute(&html, d); err != nil {
		panic("mail: html template: " + err.Error())
	}
	return Message{Subject: d.Subject, Text: text.String(), HTML: html.String()}
}

// cleanClinicName keeps the name on one line (it goes into the subject).
func cleanClinicName(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "Your clinic"
	}
	return s
}

func parse(name, text, body string) templates {
	return templates{
		text: texttemplate.Must(texttemplate.New(name).Parse(text)),
		html: htmltemplate.Must(htmltemplate.New(name).Parse(htmlLayoutStart + body + htmlLayoutEnd)),
	}
}

var invitationTemplates = parse("invitation", `Hello,

{{.Clinic}} invites you to its patient portal.

To accept the invitation, open this link and choose a password:

{{.Link}}

The link works once and is valid for 24 hours{{if .Expires}}, until {{.Expires}}{{end}}. If it has expired, use "Forgot password" on the portal's sign-in page to get a new one.

If you did not expect this email, you can ignore it: nothing happens unless you open the link. If you have questions, please contact {{.Clinic}} directly.

This email was sent automatically; replies are not read.
`, `
<p>Hello,</p>
<p>{{.Clinic}} invites you to its patient portal.</p>
<p>To accept the invitation, open this link and choose a password:</p>
<p><a href="{{.Link}}" style="display:inline-block;padding:12px 20px;background:#1a5fb4;color:#ffffff;text-decoration:none;border-radius:4px;font-weight:bold;">Accept the invitation</a></p>
<p>If the button does not work, copy this address into your browser:<br><a href="{{.Link}}" style="color:#1a5fb4;word-break:break-all;">{{.Link}}</a></p>
<p>The link works once and is valid for 24 hours{{if .Expires}}, until {{.Expires}}{{end}}. If it has expired, use “Forgot password” on the portal’s sign-in page to get a new one.</p>
<p>If you did not expect this email, you can ignore it: nothing happens unless you open the link. If you have questions, please contact {{.Clinic}} directly.</p>
`)

var resetTemplates = parse("password-reset", `Hello,

We received a request to reset the password of your {{.Clinic}} patient portal account.

To choose a new password, open this link:

{{.Link}}

The link works once and is valid for 1 hour{{if .Expires}}, until {{.Expires}}{{end}}.

If you did not ask for this, you can ignore this email: your password stays as it is.

This email was sent automatically; replies are not read.
`, `
<p>Hello,</p>
<p>We received a request to reset the password of your {{.Clinic}} patient portal account.</p>
<p>To choose a new password, open this link:</p>
<p><a href="{{.Link}}" style="display:inline-block;padding:12px 20px;background:#1a5fb4;color:#ffffff;text-decoration:none;border-radius:4px;font-weight:bold;">Choose a new password</a></p>
<p>If the button does not work, copy this address into your browser:<br><a href="{{.Link}}" style="color:#1a5fb4;word-break:break-all;">{{.Link}}</a></p>
<p>The link works once and is valid for 1 hour{{if .Expires}}, until {{.Expires}}{{end}}.</p>
<p>If you did not ask for this, you can ignore this email: your password stays as it is.</p>
`)

// The HTML layout: one column, system fonts, inline styles only — no
// external images, stylesheets or fonts — and a language and title for
// screen readers.
const htmlLayoutStart = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Subject}}</title>
</head>
<body style="margin:0;padding:0;background:#ffffff;">
<main style="max-width:600px;margin:0 auto;padding:24px 16px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;color:#1f1f1f;">`

const htmlLayoutEnd = `
<p style="font-size:14px;color:#555555;">This email was sent automatically; replies are not read.</p>
</main>
</body>
</html>
`

package webportal

// What people read when something did not work: the API's stable problem
// codes mapped to plain words and the way forward. The API's detail is
// shown only where it is written for people and holds no PHI (password
// rules).

import (
	"net/http"
	"strconv"
	"strings"
)

// message is one error (or notice) as the portal shows it.
type message struct {
	Title string
	Text  string
	// NewLink offers "Send me a new link" (expired, used or broken links).
	NewLink bool
	// SignIn offers the sign-in page.
	SignIn bool
	// Reference is a correlation id to quote to the clinic.
	Reference string
}

// msgContext says where a problem arose, where one code means different
// things (invalid_credentials at sign-in and on an invitation).
type msgContext int

const (
	ctxGeneral msgContext = iota
	ctxLogin
	ctxInvite
	ctxReset
	ctxUpload
)

func messageFor(pr problem, where msgContext) message {
	switch pr.Code {
	case "invitation_expired":
		return message{Title: "This invitation link has expired",
			Text:    "Invitation links work for 24 hours, and only the newest email's link works. Enter your email address and we will send you a new link.",
			NewLink: true}
	case "token_expired":
		return message{Title: "This password reset link has expired",
			Text:    "Reset links work for one hour. Enter your email address and we will send you a new link.",
			NewLink: true}
	case "token_used":
		return message{Title: "This link has already been used",
			Text:    "Each link works once. If you set your password with it, sign in with that password. Otherwise ask for a new link.",
			NewLink: true, SignIn: true}
	case "token_invalid":
		return message{Title: "This link does not work",
			Text:    "It may have been cut short when it was copied, or a newer email replaced it. Use the link in the newest email, or ask for a new link.",
			NewLink: true}
	case "password_rejected":
		text := "Choose another password."
		if d := strings.TrimSpace(pr.Detail); d != "" {
			text = "That password cannot be used: " + d + ". Choose another."
		}
		return message{Title: "Choose another password", Text: text}
	case "current_password_wrong":
		return message{Title: "The current password is not right",
			Text: "Type the password you signed in with. Forgot it? Sign out and use \u201cForgot password\u201d."}
	case "passwords_differ":
		return message{Title: "The passwords do not match", Text: "Type the same password in both fields."}
	case "invalid_credentials":
		if where == ctxInvite {
			return message{Title: "This email already has a portal account",
				Text: "Enter the password of that account in both fields to add this patient to it. Forgot it? Ask for a new link and reset it first."}
		}
		return message{Title: "The email or password is not right", Text: "Check both and try again, or use \u201cForgot password\u201d."}
	case "too_many_attempts":
		return message{Title: "Too many attempts", Text: "For your safety, wait a few minutes and try again, or use \u201cForgot password\u201d."}
	case "unauthenticated":
		return message{Title: "Please sign in again", Text: "Your session ended: sessions end after 30 minutes without use, or after 12 hours.", SignIn: true}
	case "staff_account":
		return message{Title: "This portal is for patients and families",
			Text: "You signed in with a clinic staff account. Staff work in the clinic's staff application."}
	case "not_found":
		return message{Title: "We could not find that",
			Text: "It may have been removed, or your access to it has ended. Go to the start page."}
	case "file_too_large":
		return message{Title: "The file is too large", Text: "Send a file of at most 10 MB. A scan at a lower resolution, or a PDF, is usually smaller."}
	case "unsupported_media_type":
		return message{Title: "This kind of file cannot be sent", Text: "Send a PDF, a PNG or JPEG picture, or a Word (.docx) document."}
	case "upload_incomplete":
		return message{Title: "The file did not arrive whole", Text: "The upload was cut off. Try again."}
	case "no_file":
		return message{Title: "Choose a file first", Text: "Choose the completed form on your device, then press \u201cReturn the form\u201d."}
	case "form_returned":
		return message{Title: "Thank you: the form was returned", Text: "The clinic can now see the file you sent."}
	case "payment_processing_disabled":
		return message{Title: "Card payments are not available", Text: "Your clinic does not take card payments in the portal. Please pay at the front desk."}
	case "validation_failed":
		if where == ctxUpload {
			return message{Title: "The file could not be sent", Text: "Choose one file and try again."}
		}
		return message{Title: "Please check what you entered", Text: "Something in the form was missing or not in the expected form."}
	case "audit_unavailable", "unavailable":
		return message{Title: "The portal cannot show this right now", Text: "Please try again in a few minutes."}
	case "conflict", "concurrent_update":
		return message{Title: "Something changed meanwhile", Text: "Reload the page and try again."}
	case "forbidden":
		return message{Title: "This is not open to your account", Text: "Go to the start page."}
	}
	return message{Title: "Something went wrong", Text: "Please try again. If it keeps happening, contact the clinic and quote the reference below."}
}

// statusFor is the HTTP status of a page showing pr.
func statusFor(pr problem) int {
	switch {
	case pr.Status >= 500:
		return http.StatusBadGateway
	case pr.Status >= 400:
		return pr.Status
	}
	return http.StatusBadRequest
}

// notices are the success messages a redirect names with ?m=.
var notices = map[string]string{
	"signed_out":       "You are signed out.",
	"password_set":     "Your new password is set. Sign in with it.",
	"password_changed": "Your password is changed. Your other devices were signed out.",
	"link_sent":        "If the address has a portal account, an email with a new link is on its way. It can take a few minutes; check your spam folder too.",
	"returned":         "Thank you: the form was returned. The clinic can now see the file you sent.",
	"paid":             "Thank you: your payment was sent. Its receipt appears under Payments once the card payment is confirmed.",
	"linked":           "The patient was added to your account.",
}

// errorCodes are the problem codes a redirect may name with ?e= (only
// these: the query is not free text).
var errorCodes = map[string]bool{
	"file_too_large": true, "unsupported_media_type": true, "upload_incomplete": true, "no_file": true,
	"validation_failed": true, "not_found": true, "conflict": true, "audit_unavailable": true, "unavailable": true,
	"internal": true, "unauthenticated": true, "payment_processing_disabled": true,
}

func retryAfterText(h http.Header) string {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		m := (s + 59) / 60
		if m <= 1 {
			return "Wait a minute and try again."
		}
		return "Wait " + strconv.Itoa(m) + " minutes and try again."
	}
	return ""
}

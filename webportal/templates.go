package webportal

import (
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	"when": func(t time.Time, loc *time.Location) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format("Mon 2 Jan 2006, 3:04 PM")
	},
	"day": func(t time.Time, loc *time.Location) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format("2 Jan 2006")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"clock": func(t time.Time, loc *time.Location) string {
		return t.In(loc).Format("3:04 PM")
	},
	"size": func(n int64) string {
		switch {
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%d KB", n/(1<<10))
		}
		return fmt.Sprintf("%d bytes", n)
	},
	"words": func(s string) string { // evaluation → Evaluation, follow_up → Follow up
		s = strings.ReplaceAll(s, "_", " ")
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"did": func(subtype string) string {
		switch subtype {
		case "read":
			return "viewed"
		case "query":
			return "looked at"
		case "download":
			return "downloaded"
		case "print":
			return "printed"
		case "export":
			return "exported"
		}
		return subtype
	},
	"what": func(kinds []string) string {
		names := map[string]string{"Patient": "details", "Appointment": "appointments", "DocumentReference": "documents",
			"HomeActivity": "home activities", "Questionnaire": "intake forms", "QuestionnaireResponse": "returned forms",
			"Task": "intake forms", "CarePlan": "home activities", "AuditEvent": "access log", "RelatedPerson": "portal users",
			"Invoice": "invoices", "PaymentNotice": "payments", "PaymentReconciliation": "payments", "Account": "balance"}
		seen := map[string]bool{}
		var out []string
		for _, k := range kinds {
			n := names[k]
			if n == "" {
				n = strings.ToLower(k)
			}
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			return "the record"
		}
		return strings.Join(out, ", ")
	},
	"who": func(kind, role string) string {
		switch kind {
		case "staff":
			if role != "" {
				return "clinic staff, " + strings.ReplaceAll(role, "_", " ")
			}
			return "clinic staff"
		case "portal":
			return "portal user"
		}
		return kind
	},
}

// parsePages parses each page of templates/ together with the layout.
func parsePages() (map[string]*template.Template, error) {
	layout, err := fs.ReadFile(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		body, err := fs.ReadFile(templateFS, n)
		if err != nil {
			return nil, err
		}
		t, err := template.New("layout").Funcs(funcs).Parse(string(layout))
		if err != nil {
			return nil, fmt.Errorf("layout: %w", err)
		}
		if _, err := t.Parse(string(body)); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		pages[name] = t
	}
	return pages, nil
}

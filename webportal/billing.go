package webportal

// Billing: balance, invoices and payments where the clinic shows them, and
// the card payment page. The API answers 404 when the clinic turned balance
// and invoices off or does not take payments; those parts are then hidden.
// Fields are read leniently (several spellings), so the page follows the
// payments API as it settles; see docs/webportal.md.

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

type money struct {
	Cents    int64
	Currency string
}

func (m money) String() string {
	cur := strings.ToUpper(m.Currency)
	sign := ""
	c := m.Cents
	if c < 0 {
		sign, c = "-", -c
	}
	switch cur {
	case "USD", "":
		return fmt.Sprintf("%s$%d.%02d", sign, c/100, c%100)
	case "EUR":
		return fmt.Sprintf("%s\u20ac%d.%02d", sign, c/100, c%100)
	case "GBP":
		return fmt.Sprintf("%s\u00a3%d.%02d", sign, c/100, c%100)
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, c/100, c%100, cur)
}

type invoice struct {
	ID      string
	Number  string
	Total   money
	Due     money
	HasDue  bool
	DueDate string
	Status  string
}

type payment struct {
	ID      string
	Amount  money
	State   string
	Method  string
	When    time.Time
	Receipt bool
}

type billingData struct {
	Patient      linkedPatient
	BalanceShown bool
	Balance      money
	Invoices     section[invoice]
	Payments     section[payment]
	CanPay       bool
	Failed       string
	Loc          *time.Location
}

func str(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if v, ok := m[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}

func cents(m map[string]any, keys ...string) (int64, bool) {
	for _, k := range keys {
		if v, ok := m[k].(float64); ok && v == math.Trunc(v) {
			return int64(v), true
		}
	}
	return 0, false
}

func list(body map[string]any, key string) []map[string]any {
	raw, _ := body[key].([]any)
	var out []map[string]any
	for _, x := range raw {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// getMap GETs path and decodes the answer as an object; found false on 404
// (the clinic turned balance and invoices off) and on 403
// payment_processing_disabled (the clinic takes no payments at all: every
// billing route answers so), which hide that part rather than fail it.
func (p *Portal) getMap(w http.ResponseWriter, r *http.Request, token, path string) (body map[string]any, found, ok bool, failed string) {
	res := p.get(r, token, path)
	if !res.ok() {
		pr := res.problem()
		if pr.Code == "unauthenticated" {
			p.apiFailed(w, r, res, ctxGeneral)
			return nil, false, false, ""
		}
		if res.Status == http.StatusNotFound || pr.Code == "payment_processing_disabled" {
			return nil, false, true, ""
		}
		return nil, false, true, messageFor(pr, ctxGeneral).Title
	}
	if err := res.decode(&body); err != nil {
		return nil, false, true, "Something went wrong"
	}
	return body, true, true, ""
}

func (p *Portal) billing(w http.ResponseWriter, r *http.Request) {
	s, lp, ok := p.signedInFor(w, r)
	if !ok {
		return
	}
	base := "/portal/patients/" + lp.PatientID
	d := billingData{Patient: lp, Loc: p.cfg.Location}
	bal, found, ok, failed := p.getMap(w, r, s.token, base+"/balance")
	if !ok {
		return
	}
	if found {
		d.BalanceShown = true
		// {balances:[{currency,balance_cents,…}]}, one per currency; or one
		// balance at the top level.
		one := bal
		if l := list(bal, "balances"); len(l) > 0 {
			one = l[0]
			for _, b := range l {
				if c, _ := cents(b, "balance_cents"); c != 0 {
					one = b
					break
				}
			}
		}
		c, _ := cents(one, "balance_cents", "amount_cents", "amount_due_cents", "due_cents")
		d.Balance = money{Cents: c, Currency: str(one, "currency")}
	}
	d.Failed = failed
	inv, found, ok, failed := p.getMap(w, r, s.token, base+"/invoices")
	if !ok {
		return
	}
	d.Invoices.Shown, d.Invoices.Failed = found || failed != "", failed
	for _, m := range list(inv, "invoices") {
		i := invoice{ID: str(m, "id", "invoice_id"), Number: str(m, "number"), DueDate: str(m, "due_date"), Status: str(m, "status", "state")}
		t, _ := cents(m, "total_cents", "amount_cents")
		i.Total = money{Cents: t, Currency: str(m, "currency")}
		if due, ok := cents(m, "open_cents", "balance_cents", "amount_due_cents", "due_cents", "outstanding_cents"); ok {
			i.Due, i.HasDue = money{Cents: due, Currency: i.Total.Currency}, true
		}
		d.Invoices.Items = append(d.Invoices.Items, i)
	}
	pays, found, ok, failed := p.getMap(w, r, s.token, base+"/payments")
	if !ok {
		return
	}
	d.Payments.Shown, d.Payments.Failed = found || failed != "", failed
	for _, m := range list(pays, "payments") {
		py := payment{ID: str(m, "id", "payment_id"), State: str(m, "state", "status"), Method: str(m, "method")}
		a, _ := cents(m, "amount_cents")
		py.Amount = money{Cents: a, Currency: str(m, "currency")}
		for _, k := range []string{"succeeded_at", "paid_at", "recorded_at", "created_at"} {
			if t, err := time.Parse(time.RFC3339, str(m, k)); err == nil {
				py.When = t
				break
			}
		}
		py.Receipt = py.ID != "" && (py.State == "succeeded" || py.State == "refunded" || str(m, "receipt_number") != "")
		d.Payments.Items = append(d.Payments.Items, py)
	}
	d.CanPay = d.Payments.Shown && d.Payments.Failed == ""
	v := &view{Title: "Billing", Account: s.me.Name, Patients: s.me.Patients, Current: &lp, Data: d}
	v.Notice = notices[r.URL.Query().Get("m")]
	p.render(w, r, http.StatusOK, "billing", v)
}

type payData struct {
	Patient        linkedPatient
	Amount         string
	Currency       string
	InvoiceID      string
	StripeKey      string
	ClientSecret   string
	PaymentID      string
	Configured     bool
	ReturnURL      string
	AmountReadable string
}

func (p *Portal) payPage(w http.ResponseWriter, r *http.Request) {
	s, lp, ok := p.signedInFor(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	d := payData{Patient: lp, Currency: "USD", Configured: p.cfg.StripePublishableKey != ""}
	if id := q.Get("invoice"); id != "" {
		if _, err := uuid.Parse(id); err == nil {
			d.InvoiceID = id
		}
	}
	if a := q.Get("amount"); a != "" {
		if c, err := parseAmount(a); err == nil {
			d.Amount = formatAmount(c)
		}
	}
	if c := q.Get("currency"); len(c) == 3 {
		d.Currency = strings.ToUpper(c)
	}
	p.render(w, r, http.StatusOK, "pay", &view{Title: "Pay by card", Account: s.me.Name, Patients: s.me.Patients, Current: &lp, Data: d})
}

// parseAmount reads "12.50" (or "12,50") as cents.
func parseAmount(s string) (int64, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "$"))
	s = strings.ReplaceAll(s, ",", ".")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if len(frac) > 2 {
		return 0, fmt.Errorf("too many decimals")
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w < 0 || w > 1_000_000 {
		return 0, fmt.Errorf("not an amount")
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("not an amount")
	}
	return w*100 + f, nil
}

func formatAmount(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }

// pay starts a card payment: the API makes the Stripe PaymentIntent and
// answers its client secret; the page then shows Stripe's card form.
func (p *Portal) pay(w http.ResponseWriter, r *http.Request) {
	if !p.checkForm(w, r) {
		return
	}
	s, lp, ok := p.signedInFor(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	d := payData{Patient: lp, Amount: f.Get("amount"), Currency: strings.ToUpper(f.Get("currency")), Configured: p.cfg.StripePublishableKey != ""}
	if len(d.Currency) != 3 {
		d.Currency = "USD"
	}
	if id := f.Get("invoice_id"); id != "" {
		if _, err := uuid.Parse(id); err == nil {
			d.InvoiceID = id
		}
	}
	v := &view{Title: "Pay by card", Account: s.me.Name, Patients: s.me.Patients, Current: &lp}
	c, err := parseAmount(d.Amount)
	if err != nil || c <= 0 {
		v.Problem = &message{Title: "Please check the amount", Text: "Enter an amount such as 25.00."}
		v.Data = d
		p.render(w, r, http.StatusBadRequest, "pay", v)
		return
	}
	if !d.Configured {
		v.Data = d
		p.render(w, r, http.StatusOK, "pay", v)
		return
	}
	req := map[string]any{"amount_cents": c, "currency": d.Currency}
	if d.InvoiceID != "" {
		req["invoice_id"] = d.InvoiceID
	}
	res := p.postJSON(r, s.token, "/portal/patients/"+lp.PatientID+"/payments", req)
	if !res.ok() {
		pr := res.problem()
		if pr.Code == "unauthenticated" {
			p.apiFailed(w, r, res, ctxGeneral)
			return
		}
		m := messageFor(pr, ctxGeneral)
		if res.Status == http.StatusNotFound {
			m = messageFor(problem{Code: "payment_processing_disabled"}, ctxGeneral)
		}
		m.Reference = correlationID(r)
		v.Problem, v.Data = &m, d
		p.render(w, r, statusFor(pr), "pay", v)
		return
	}
	var out struct {
		PaymentID    string `json:"payment_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := res.decode(&out); err != nil || out.ClientSecret == "" {
		p.fail(w, r, http.StatusBadGateway, messageFor(problem{Code: "internal"}, ctxGeneral))
		return
	}
	d.StripeKey, d.ClientSecret, d.PaymentID = p.cfg.StripePublishableKey, out.ClientSecret, out.PaymentID
	d.AmountReadable = money{Cents: c, Currency: d.Currency}.String()
	d.ReturnURL = "/patients/" + lp.PatientID + "/billing?m=paid"
	v.Data = d
	p.render(w, r, http.StatusOK, "card", v)
}

// Decimal is the amount as the pay form takes it ("12.50").
func (m money) Decimal() string { return formatAmount(m.Cents) }

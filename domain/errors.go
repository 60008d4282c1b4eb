package domain

import (
	"errors"
	"fmt"
)

// Kind says what sort of refusal an Error is; the HTTP layer maps each kind
// to a status in one place (readapi/problem.go).
type Kind int

const (
	KindValidation Kind = iota + 1
	KindNotFound
	KindConflict
	KindForbidden
	KindUnauthorized
	KindPrecondition
	// KindDisabled: a feature the clinic is not enrolled in.
	KindDisabled
)

// Error is a refusal a caller can act on. Code is stable and public
// (API.md lists the codes); Message is for people.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Fields names the input fields at fault, for validation errors.
	Fields map[string]string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Invalid is a validation refusal naming the fields at fault.
func Invalid(fields map[string]string) *Error {
	return &Error{Kind: KindValidation, Code: "validation_failed", Message: "some fields are not valid", Fields: fields}
}

// NotFound is for something the caller may not see or that does not exist;
// the two are answered alike so ids cannot be probed.
func NotFound(what string) *Error {
	return &Error{Kind: KindNotFound, Code: "not_found", Message: what + " not found"}
}

// Conflict is a refusal because of the current state.
func Conflict(code, format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Forbidden is a refusal of an authenticated caller's authority.
func Forbidden(format string, args ...any) *Error {
	return &Error{Kind: KindForbidden, Code: "forbidden", Message: fmt.Sprintf(format, args...)}
}

// PaymentProcessingDisabled refuses anything payment-related for a clinic
// that is not enrolled in payment processing (Clinic Options).
func PaymentProcessingDisabled() *Error {
	return &Error{Kind: KindDisabled, Code: "payment_processing_disabled", Message: "the clinic does not take payments through the portal"}
}

// AsError finds a *Error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

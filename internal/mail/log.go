package mail

import (
	"context"
	"log/slog"
	"strings"
)

// NewLog returns the Sender used when PORTAL_SMTP_URL is unset: it writes
// each message to logger at info level instead of sending it — subject,
// recipient (masked), id and the text body (the HTML one when there is no text) with
// every token value replaced by REDACTED. Nothing is delivered, and the
// redacted link cannot be used; it shows that an email would have gone out.
func NewLog(logger *slog.Logger) Sender {
	if logger == nil {
		logger = slog.Default()
	}
	return logSender{logger}
}

type logSender struct{ logger *slog.Logger }

func (s logSender) Send(ctx context.Context, m Message) error {
	body := m.Text
	if body == "" {
		body = m.HTML
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "email not sent: PORTAL_SMTP_URL is unset",
		slog.String("to", maskAddress(m.To)),
		slog.String("subject", Redact(m.Subject)),
		slog.String("message_id", m.ID),
		slog.String("body", Redact(body)),
	)
	return nil
}

// maskAddress keeps an address's domain and first letter: enough to tell
// which email a log line is about, not enough to name a patient's family.
func maskAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "***"
	}
	return addr[:1] + "***" + addr[at:]
}

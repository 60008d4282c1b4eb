// Package linktoken makes and checks the tokens of emailed links (invitation
// and password reset).
//
// A token is derived, never stored: it is an HMAC-SHA256, under a server key,
// over the link's purpose, the id of the invitation or reset it opens and
// that link's expiry, sent together with the id and expiry. The event log
// holds the id and expiry (they are not secrets); the token cannot be made
// from them without the key, so neither the log nor a database dump opens a
// link. Whether a link was used, superseded or revoked is decided by the
// event streams, not here. docs/security.md says why we chose this over
// random tokens kept hashed.
package linktoken

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Purposes keep a token of one kind of link from opening another.
const (
	PurposeInvitation = "invitation"
	PurposeReset      = "reset"
)

// KeySize is the key length in bytes: 256 bits.
const KeySize = 32

const version = 1

// layout: version(1) | subject(16) | nonce(16) | expires unix seconds(8) | mac(32)
const tokenBytes = 1 + 16 + 16 + 8 + sha256.Size

// ErrInvalid is every refusal of Parse: bad shape, bad MAC, another purpose.
// Expiry is not checked here; the caller's aggregate knows the clock.
var ErrInvalid = errors.New("linktoken: invalid token")

// Keys makes and checks tokens.
type Keys struct{ key []byte }

// New uses key (at least KeySize bytes).
func New(key []byte) (*Keys, error) {
	if len(key) < KeySize {
		return nil, fmt.Errorf("linktoken: key must be at least %d bytes", KeySize)
	}
	return &Keys{key: append([]byte(nil), key...)}, nil
}

// ParseKey reads a key written as hex or base64 (std or url, padded or not).
func ParseKey(s string) ([]byte, error) {
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if b, err := dec(s); err == nil && len(b) >= KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("linktoken: the key must be at least %d bytes, written as hex or base64", KeySize)
}

// Make is the token of a link. subject is the invitation or the account;
// nonce names the reset (uuid.Nil for invitations).
func (k *Keys) Make(purpose string, subject, nonce uuid.UUID, expires time.Time) string {
	b := make([]byte, 0, tokenBytes)
	b = append(b, version)
	b = append(b, subject[:]...)
	b = append(b, nonce[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(expires.Unix()))
	b = append(b, k.mac(purpose, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Claims are what a valid token names.
type Claims struct {
	Subject uuid.UUID
	Nonce   uuid.UUID
	Expires time.Time
}

// Parse checks a token made for purpose and returns what it names.
func (k *Keys) Parse(purpose, token string) (Claims, error) {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return Claims{}, ErrInvalid
	}
	// Strict: one token, one spelling (no stray bits in the last character).
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != tokenBytes || b[0] != version {
		return Claims{}, ErrInvalid
	}
	body, mac := b[:tokenBytes-sha256.Size], b[tokenBytes-sha256.Size:]
	if !hmac.Equal(mac, k.mac(purpose, body)) {
		return Claims{}, ErrInvalid
	}
	var c Claims
	copy(c.Subject[:], body[1:17])
	copy(c.Nonce[:], body[17:33])
	c.Expires = time.Unix(int64(binary.BigEndian.Uint64(body[33:41])), 0).UTC()
	return c, nil
}

func (k *Keys) mac(purpose string, body []byte) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte("portico-link/" + purpose + "\x00"))
	m.Write(body)
	return m.Sum(nil)
}

// Stored is the key kept in the database (table server_keys) for when no key
// is configured: the first process to start makes it, every later one reads
// it, so all processes of one database agree. Production should configure
// PORTAL_TOKEN_KEY instead, so that a database dump alone cannot make links.
func Stored(ctx context.Context, pool *pgxpool.Pool) ([]byte, error) {
	fresh := make([]byte, KeySize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, `INSERT INTO server_keys (name, key) VALUES ('link_token', $1) ON CONFLICT (name) DO NOTHING`, fresh); err != nil {
		return nil, fmt.Errorf("linktoken: store key: %w", err)
	}
	var key []byte
	if err := pool.QueryRow(ctx, `SELECT key FROM server_keys WHERE name = 'link_token'`).Scan(&key); err != nil {
		return nil, fmt.Errorf("linktoken: read key: %w", err)
	}
	return key, nil
}

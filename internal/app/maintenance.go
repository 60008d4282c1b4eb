package app

import (
	"context"
	"time"

	"github.com/portico-health/portico/internal/sessions"
	"github.com/portico-health/portico/internal/throttle"
)

// MaintainEvery is how often Maintain clears what has run its course.
const MaintainEvery = 10 * time.Minute

// sessionsKept is how long ended sessions stay, for support questions
// ("was I signed out?"), before they are purged.
const sessionsKept = 7 * 24 * time.Hour

// Maintain purges ended sessions and spent throttle counters now and every
// MaintainEvery until ctx ends. Every process may run it: the deletes are
// idempotent.
func (a *App) Maintain(ctx context.Context) {
	t := time.NewTicker(MaintainEvery)
	defer t.Stop()
	for {
		if n, err := sessions.New(a.Pool, sessions.WithClock(a.Clock)).Purge(ctx, sessionsKept); err != nil && ctx.Err() == nil {
			a.Logger.Warn("purging sessions failed", "err", err)
		} else if n > 0 {
			a.Logger.Info("purged sessions", "count", n)
		}
		if _, err := throttle.New(a.Pool, throttle.WithClock(a.Clock)).Purge(ctx); err != nil && ctx.Err() == nil {
			a.Logger.Warn("purging sign-in throttle counters failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

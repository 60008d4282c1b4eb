package projections

import (
	"context"
	"hash/crc32"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// leaseClass is the first key of every projection's advisory lock ("PRJ"),
// so pg_locks shows which projections are running anywhere.
const leaseClass int32 = 0x50524A

func leaseKey(name string) int32 { return int32(crc32.ChecksumIEEE([]byte(name))) }

// lease is a session-level advisory lock on a connection of its own: held
// while this process runs a projection, released by Postgres the moment the
// process dies and its connection drops, so another process takes over.
type lease struct {
	conn *pgx.Conn
	lost chan struct{}
	stop chan struct{}
	done chan struct{}
}

// acquireLease waits until this process holds the projection's lease, trying
// every retry interval, or until ctx ends.
func acquireLease(ctx context.Context, pool *pgxpool.Pool, name string, retry time.Duration) (*lease, error) {
	for {
		conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
		if err == nil {
			var got bool
			err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, leaseClass, leaseKey(name)).Scan(&got)
			if err == nil && got {
				l := &lease{conn: conn, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
				go l.watch()
				return l, nil
			}
			_ = conn.Close(context.Background())
		}
		if !sleep(ctx, retry) {
			return nil, ctx.Err()
		}
	}
}

// watch pings the lease connection; if it fails, the lock may be gone.
func (l *lease) watch() {
	defer close(l.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := l.conn.Ping(ctx)
			cancel()
			if err != nil {
				close(l.lost)
				return
			}
		}
	}
}

// Lost is closed when the lease can no longer be trusted.
func (l *lease) Lost() <-chan struct{} { return l.lost }

// release gives the lease up.
func (l *lease) release() {
	close(l.stop)
	<-l.done
	// Closing the session releases the lock; an explicit unlock first makes
	// the hand-over immediate even if the close is slow.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	_ = l.conn.Close(ctx)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/portico-health/portico/eventstore"
)

type readConfig struct {
	DatabaseURL string `json:"-"`
	Page        int    `json:"page"`
	Passes      int    `json:"passes"`
	JSON        bool   `json:"-"`
}

// ReadPass is one full read of the log from Start.
type ReadPass struct {
	Pass         int     `json:"pass"`
	Events       int     `json:"events"`
	Pages        int     `json:"pages"`
	Elapsed      float64 `json:"elapsed_s"`
	EventsPerSec float64 `json:"events_per_s"`
	DataMiB      float64 `json:"data_mib"`
	PageLatency  Latency `json:"page_latency"`
}

type readReport struct {
	Command            string     `json:"command"`
	Env                Env        `json:"env"`
	Config             readConfig `json:"config"`
	Head               uint64     `json:"head"`
	Passes             []ReadPass `json:"passes"`
	MedianEventsPerSec float64    `json:"median_events_per_s"`
	Interrupted        bool       `json:"interrupted,omitempty"`
}

func runRead(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	var cfg readConfig
	fs.StringVar(&cfg.DatabaseURL, "database-url", defaultDatabaseURL, "Postgres URL of the log to read (the one append wrote; not modified)")
	fs.IntVar(&cfg.Page, "page", 500, "events per ReadAll call")
	fs.IntVar(&cfg.Passes, "passes", 3, "full reads of the log from Start; the first one may warm the cache")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("read: unexpected arguments %q", fs.Args())
	}
	if cfg.Page < 1 || cfg.Passes < 1 {
		return errors.New("-page and -passes must be at least 1")
	}
	name, err := databaseName(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	p, err := openPeer(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer p.Close()
	env, err := environment(ctx, p.pool, name)
	if err != nil {
		return err
	}
	head, err := p.store.Head(ctx)
	if err != nil {
		return err
	}
	if head == eventstore.Start {
		return fmt.Errorf("the log in %s is empty: run `portalbench append` first", name)
	}
	report := readReport{Command: "read", Env: env, Config: cfg, Head: uint64(head)}
	var rates []float64
	for i := 1; i <= cfg.Passes; i++ {
		logf("pass %d: reading %d events in pages of %d", i, head, cfg.Page)
		pass, err := readPass(ctx, p.store, cfg.Page)
		if ctx.Err() != nil {
			report.Interrupted = true
			break
		}
		if err != nil {
			return err
		}
		pass.Pass = i
		report.Passes = append(report.Passes, pass)
		rates = append(rates, pass.EventsPerSec)
		logf("  %.0f events/s", pass.EventsPerSec)
	}
	report.MedianEventsPerSec = median(rates)
	if cfg.JSON {
		if err := printJSON(report); err != nil {
			return err
		}
	} else {
		report.print()
	}
	if report.Interrupted {
		return errInterrupted
	}
	return nil
}

// readPass reads the whole log from Start, one ReadAll page at a time, as a
// projection rebuild does.
func readPass(ctx context.Context, store eventstore.Store, page int) (ReadPass, error) {
	var r ReadPass
	var pageTimes []time.Duration
	var bytes int
	after := eventstore.Start
	start := time.Now()
	for {
		t0 := time.Now()
		events, err := store.ReadAll(ctx, after, page, eventstore.Filter{})
		if err != nil {
			return r, err
		}
		pageTimes = append(pageTimes, time.Since(t0))
		r.Pages++
		r.Events += len(events)
		for _, e := range events {
			bytes += len(e.Data)
		}
		if len(events) < page {
			break
		}
		after = events[len(events)-1].Position
	}
	elapsed := time.Since(start)
	r.Elapsed = elapsed.Seconds()
	r.EventsPerSec = float64(r.Events) / elapsed.Seconds()
	r.DataMiB = float64(bytes) / (1 << 20)
	r.PageLatency = summarise(pageTimes)
	return r, nil
}

func (r readReport) print() {
	r.Env.print()
	fmt.Printf("workload    ReadAll from Start to head %d, pages of %d events, no filter\n\n", r.Head, r.Config.Page)
	rows := [][]string{{"pass", "events", "pages", "seconds", "events/s", "data MiB", "page p50 ms", "page p99 ms", "page max ms"}}
	for _, p := range r.Passes {
		rows = append(rows, []string{
			strconv.Itoa(p.Pass), strconv.Itoa(p.Events), strconv.Itoa(p.Pages), f2(p.Elapsed), f0(p.EventsPerSec),
			f1(p.DataMiB), f2(p.PageLatency.P50), f2(p.PageLatency.P99), f2(p.PageLatency.Max),
		})
	}
	table(rows)
	fmt.Printf("\nmedian      %s events/s\n", f0(r.MedianEventsPerSec))
}

package pgstore

import (
	"context"
	"strings"
	"testing"
)

// Subscriptions poll their categories every second and the lag gauges count
// them every five, while the log fills with access records of another
// category. Each of these statements must walk the (category, position)
// index whatever plan Postgres keeps for it: a plan that walks the position
// index and filters steps over the whole audit trail on every call. The
// generic plan is the one at risk (the category is unknown to it), so it is
// the one checked, over a log where the wanted category is rare.
func TestCategoryReadsUseTheCategoryIndex(t *testing.T) {
	ctx := context.Background()
	_, pool := OpenTestStore(t, Config{})
	if _, err := pool.Exec(ctx, `INSERT INTO eventstore.events (position, event_id, stream, category, version, type, schema_version, data, metadata, recorded_at)
		SELECT g, gen_random_uuid(), CASE WHEN g % 1000 = 0 THEN 'patient-' ELSE 'phiaudit-' END || (g % 7), CASE WHEN g % 1000 = 0 THEN 'patient' ELSE 'phiaudit' END,
			g, 'Happened', 1, '{}', '{}', now()
		FROM generate_series(1, 60000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE eventstore.events`); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		sql  string
		args string
	}{
		"one category":     {readCategorySQL, `(5, 500, 'patient')`},
		"several":          {readCategoriesSQL, `(5, 500, '{patient,invitation}')`},
		"count of several": {countCategoriesSQL, `(5, '{patient,invitation}')`},
	} {
		stmt := "plan_" + strings.ReplaceAll(name, " ", "_")
		if _, err := conn.Exec(ctx, `PREPARE `+stmt+` AS `+c.sql); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan strings.Builder
		rows, err := conn.Query(ctx, `EXPLAIN EXECUTE `+stmt+c.args)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		rows.Close()
		if !strings.Contains(plan.String(), "events_category_position") || strings.Contains(plan.String(), "events_pkey") {
			t.Errorf("%s: the generic plan does not read along the category index:\n%s", name, plan.String())
		}
	}
}

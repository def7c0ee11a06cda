package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

type invariant struct {
	Name     string   `json:"name"`
	Passed   bool     `json:"passed"`
	Checked  int      `json:"checked"`
	Failures []string `json:"failures,omitempty"` // the first few
}

func (inv *invariant) fail(format string, args ...any) {
	inv.Passed = false
	if len(inv.Failures) < 10 {
		inv.Failures = append(inv.Failures, fmt.Sprintf(format, args...))
	}
}

// settle checks the invariants every second until they all hold or
// quiesce passes (the suite is eventually consistent: sagas, outboxes and
// compensations take a moment after the faults heal), and returns the
// last verdict.
func settle(ctx context.Context, s *suite, load loadResult, quiesce time.Duration) ([]invariant, map[string]int, []deadLetter) {
	deadline := time.Now().Add(quiesce)
	for {
		invs, outcomes, dls, err := s.check(ctx, load)
		if err != nil {
			invs = append(invs, invariant{Name: "the checks could run", Failures: []string{err.Error()}})
		}
		ok := err == nil
		for _, inv := range invs {
			ok = ok && inv.Passed
		}
		if ok || time.Now().After(deadline) || ctx.Err() != nil {
			return invs, outcomes, dls
		}
		time.Sleep(time.Second)
	}
}

type orderRow struct {
	status, reason string
	terminalEvents int
	totalCents     int64
}

func (s *suite) check(ctx context.Context, load loadResult) ([]invariant, map[string]int, []deadLetter, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conns := map[string]*pgx.Conn{}
	for _, svc := range []string{"orders", "payments", "inventory"} {
		c, err := s.db(ctx, svc)
		if err != nil {
			return nil, nil, nil, err
		}
		defer c.Close(context.WithoutCancel(ctx))
		conns[svc] = c
	}

	// Orders: every stream with OrderPlaced, its status and terminal events.
	orders := map[string]*orderRow{}
	rows, _ := conns["orders"].Query(ctx, `SELECT substr(e.stream_id, 7), coalesce(s.status, ''), coalesce(s.reason, ''),
			count(*) FILTER (WHERE e.type IN ('OrderConfirmed', 'OrderRejected', 'OrderCancelled')), coalesce(s.total_cents, -1)
		FROM events e LEFT JOIN order_summaries s ON s.order_id = substr(e.stream_id, 7)
		WHERE e.stream_id LIKE 'order-%' GROUP BY 1, 2, 3, 5`)
	var id string
	var r orderRow
	if _, err := pgx.ForEachRow(rows, []any{&id, &r.status, &r.reason, &r.terminalEvents, &r.totalCents}, func() error {
		row := r
		orders[id] = &row
		return nil
	}); err != nil {
		return nil, nil, nil, fmt.Errorf("read orders: %w", err)
	}
	payments := map[string][]string{}
	rows, _ = conns["payments"].Query(ctx, `SELECT order_id, status FROM payments`)
	var status string
	if _, err := pgx.ForEachRow(rows, []any{&id, &status}, func() error {
		payments[id] = append(payments[id], status)
		return nil
	}); err != nil {
		return nil, nil, nil, fmt.Errorf("read payments: %w", err)
	}
	reservations := map[string][]string{}
	var resv struct{ reserved, committed int64 }
	rows, _ = conns["inventory"].Query(ctx, `SELECT order_id, status, quantity FROM reservations`)
	var qty int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &status, &qty}, func() error {
		reservations[id] = append(reservations[id], status)
		switch status {
		case "RESERVED":
			resv.reserved += qty
		case "COMMITTED":
			resv.committed += qty
		}
		return nil
	}); err != nil {
		return nil, nil, nil, fmt.Errorf("read reservations: %w", err)
	}

	var invs []invariant
	outcomes := map[string]int{}

	one := invariant{Name: "every accepted order has exactly one terminal status", Passed: true}
	for oid := range load.accepted {
		one.Checked++
		o, ok := orders[oid]
		switch {
		case !ok:
			one.fail("%s: accepted (202) but not in the event store", oid)
		case o.status == "" || o.status == "PENDING":
			one.fail("%s: %q after quiescing", oid, o.status)
		case o.terminalEvents != 1:
			one.fail("%s: %d terminal events", oid, o.terminalEvents)
		default:
			outcomes[strings.TrimSuffix(o.status+" "+o.reason, " ")]++
		}
	}
	invs = append(invs, one)

	// Orders the load never heard back about are looked up by their key
	// (the customer id); anything else in the store is a duplicate.
	dup := invariant{Name: "no order was created twice (idempotency keys held)", Passed: true, Checked: len(orders)}
	if extra := len(orders) - len(load.accepted); extra > len(load.unknown) {
		dup.fail("%d orders in the store, %d accepted and %d unanswered", len(orders), len(load.accepted), len(load.unknown))
	}
	invs = append(invs, dup)

	conf := invariant{Name: "every CONFIRMED order has one AUTHORIZED payment and COMMITTED reservations", Passed: true}
	held := invariant{Name: "every CANCELLED or REJECTED order holds neither money nor stock", Passed: true}
	for oid, o := range orders {
		ps, rs := payments[oid], reservations[oid]
		switch o.status {
		case "CONFIRMED":
			conf.Checked++
			if len(ps) != 1 || ps[0] != "AUTHORIZED" {
				conf.fail("%s: payments %v", oid, ps)
			}
			if len(rs) == 0 || slices.ContainsFunc(rs, func(s string) bool { return s != "COMMITTED" }) {
				conf.fail("%s: reservations %v", oid, rs)
			}
		case "CANCELLED", "REJECTED":
			held.Checked++
			if slices.Contains(ps, "AUTHORIZED") {
				held.fail("%s (%s %s): payments %v", oid, o.status, o.reason, ps)
			}
			if slices.ContainsFunc(rs, func(s string) bool { return s != "RELEASED" }) {
				held.fail("%s (%s %s): reservations %v", oid, o.status, o.reason, rs)
			}
		}
	}
	invs = append(invs, conf, held)

	// The provider's own ledger is the truth about money: for every
	// order it holds the order's total when CONFIRMED and nothing
	// otherwise, and it holds money for no charge the suite does not know.
	money := invariant{Name: "the provider's ledger holds each CONFIRMED order's total and nothing for any other order", Passed: true}
	ledger, err := s.ledger(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read psp's ledger: %w", err)
	}
	for oid, o := range orders {
		money.Checked++
		want := int64(0)
		if o.status == "CONFIRMED" {
			want = o.totalCents
		}
		if held := ledger["charge-"+oid]; held != want {
			money.fail("%s (%s %s, total %d): the provider holds %d (payments %v)", oid, o.status, o.reason, o.totalCents, held, payments[oid])
		}
	}
	for key, held := range ledger {
		if _, known := orders[strings.TrimPrefix(key, "charge-")]; !known && held != 0 {
			money.fail("the provider holds %d under %s, which is no order's", held, key)
		}
	}
	invs = append(invs, money)

	stock := invariant{Name: "stock is conserved per SKU (available + reserved + committed = seeded)", Passed: true}
	var skus, total, reserved, committed int64
	if err := conns["inventory"].QueryRow(ctx, `SELECT count(*), coalesce(sum(available + reserved + committed), 0),
		coalesce(sum(reserved), 0), coalesce(sum(committed), 0) FROM products`).Scan(&skus, &total, &reserved, &committed); err != nil {
		return nil, nil, nil, fmt.Errorf("read stock: %w", err)
	}
	stock.Checked = int(skus)
	rows, _ = conns["inventory"].Query(ctx, `SELECT sku, available + reserved + committed FROM products WHERE available + reserved + committed <> $1`, int64(seedStock))
	var sku string
	if _, err := pgx.ForEachRow(rows, []any{&sku, &total}, func() error {
		stock.fail("%s: available + reserved + committed = %d, seeded %d", sku, total, seedStock)
		return nil
	}); err != nil {
		return nil, nil, nil, fmt.Errorf("read stock: %w", err)
	}
	if reserved != resv.reserved || committed != resv.committed {
		stock.fail("products say reserved %d, committed %d; reservations say %d, %d", reserved, committed, resv.reserved, resv.committed)
	}
	invs = append(invs, stock)

	drained := invariant{Name: "every outbox and every planned provider call drains to zero", Passed: true}
	for _, q := range []struct{ svc, what, sql string }{
		{"orders", "outbox", `SELECT count(*) FROM outbox`},
		{"payments", "outbox", `SELECT count(*) FROM outbox`},
		{"inventory", "outbox", `SELECT count(*) FROM outbox`},
		{"payments", "planned provider calls", `SELECT count(*) FROM psp_calls`},
	} {
		var n int
		if err := conns[q.svc].QueryRow(ctx, q.sql).Scan(&n); err != nil {
			return nil, nil, nil, fmt.Errorf("%s %s: %w", q.svc, q.what, err)
		}
		drained.Checked++
		if n != 0 {
			drained.fail("%s %s: %d rows left", q.svc, q.what, n)
		}
	}
	if !drained.Passed {
		rows, _ := conns["payments"].Query(ctx, `SELECT order_id || ' ' || kind || ', ' || attempts || ' attempts, due in ' || (due_at - now())::text FROM psp_calls LIMIT 5`)
		left, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, l := range left {
			drained.fail("payments call left: %s", l)
		}
	}
	invs = append(invs, drained)

	dlqInv := invariant{Name: "every dead letter is accounted for (only injected poison)", Passed: true}
	dls, err := s.deadLetters(ctx)
	if err != nil {
		return invs, outcomes, nil, fmt.Errorf("read dead letters: %w", err)
	}
	for _, d := range dls {
		dlqInv.Checked++
		if !d.Injected {
			dlqInv.fail("unexpected dead letter %s", d)
		}
	}
	for pid := range poisonIDs {
		if !slices.ContainsFunc(dls, func(d deadLetter) bool { return d.ID == pid }) {
			dlqInv.fail("poison %s never reached a DLQ", pid)
		}
	}
	invs = append(invs, dlqInv)
	return invs, outcomes, dls, nil
}

// faultsHeld: every fault was injected and healed as planned (a process
// restarted in time, a singleton ran again after etcd came back empty).
func faultsHeld(faults []fault) invariant {
	inv := invariant{Name: "every fault was injected and healed as planned", Passed: true, Checked: len(faults)}
	for _, f := range faults {
		if f.Error != "" {
			inv.fail("%s %s at %s: %s", f.Kind, f.Target, f.At, f.Error)
		}
	}
	return inv
}

// nothingShedWhileTheBrokerPaused: the outbox absorbs a broker that is
// away, so orders offered meanwhile are accepted, not refused overloaded
// (the suite is not behind: nothing works on them until Kafka is back).
func nothingShedWhileTheBrokerPaused(faults []fault, load loadResult) invariant {
	inv := invariant{Name: "no order is shed while the broker is paused (the outbox absorbs it)", Passed: true}
	for _, f := range faults {
		if f.Kind != pauseBroker || f.began.IsZero() {
			continue
		}
		inv.Checked++
		shed := 0
		for _, at := range load.shedAt {
			if !at.Before(f.began) && at.Before(f.ended) {
				shed++
			}
		}
		if shed > 0 {
			inv.fail("%d orders refused overloaded during the %s pause at %s", shed, f.Held, f.At)
		}
	}
	return inv
}

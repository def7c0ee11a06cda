package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	kafkago "github.com/segmentio/kafka-go"
)

// Fault kinds, each one of the things the suite must survive.
const (
	killOrders    = "kill -9 orders"
	killPayments  = "kill -9 payments"
	killInventory = "kill -9 an inventory replica"
	killPSP       = "kill -9 psp"
	killBroker    = "kill -9 the broker"
	killEtcd      = "kill -9 etcd"
	pauseConsume  = "pause consumption"
	pspErrors     = "psp error storm"
	pspLatency    = "psp latency"
	duplicates    = "duplicated deliveries"
	poison        = "poison message"
	poisonValid   = "valid-looking poison"
	pgKill        = "payments' connections terminated"
	pspStall      = "psp stalled (SIGSTOP)"
	pspLate       = "psp charges, then fails to answer"
	pauseBroker   = "the broker paused (SIGSTOP)"
	inventoryLag  = "inventory lags past the reservation TTL"
	etcdEmpty     = "etcd restarted empty"
)

var kinds = []string{killOrders, killPayments, killInventory, killPSP, killBroker, killEtcd, pauseConsume, pspErrors,
	pspLatency, duplicates, poison, poisonValid, pgKill, pspStall, pspLate, pauseBroker, inventoryLag, etcdEmpty}

// fault is one scheduled fault and what became of it.
type fault struct {
	At       string `json:"at"` // offset into the load
	Kind     string `json:"kind"`
	Target   string `json:"target,omitempty"`
	Held     string `json:"held,omitempty"`     // how long the fault lasted
	Recovery string `json:"recovery,omitempty"` // restart to ready again
	Detail   string `json:"detail,omitempty"`
	Error    string `json:"error,omitempty"`
	at       time.Duration
	// began and ended bound the fault, for invariants about its window.
	began, ended time.Time
}

// plan spreads faults over the run: every kind once, in a seeded order,
// then seeded picks; one per interval.
func plan(rng *rand.Rand, duration, every time.Duration) []fault {
	n := int(duration/every) - 1 // the last interval stays quiet
	order := append([]string(nil), kinds...)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	var out []fault
	for i := range max(0, n) {
		kind := order[i%len(order)]
		if i >= len(order) {
			kind = kinds[rng.IntN(len(kinds))]
		}
		at := time.Duration(i+1)*every + time.Duration(rng.Int64N(int64(every/4)))
		f := fault{Kind: kind, at: at, At: at.Round(time.Millisecond).String()}
		if kind == killInventory {
			f.Target = fmt.Sprintf("inventory-%d", 1+rng.IntN(2))
		}
		out = append(out, f)
	}
	return out
}

// inject runs the schedule until window ends; each fault heals itself
// before the next (under ctx, which may outlast the window).
func inject(ctx, window context.Context, s *suite, schedule []fault, log io.Writer) []fault {
	start := time.Now()
	var done []fault
	for _, f := range schedule {
		select {
		case <-window.Done():
			return done
		case <-time.After(time.Until(start.Add(f.at))):
		}
		f.began = time.Now()
		err := s.apply(ctx, &f)
		f.ended = time.Now()
		f.Held = f.ended.Sub(f.began).Round(time.Millisecond).String()
		if err != nil {
			f.Error = err.Error()
		}
		fmt.Fprintf(log, "chaos: %7s %-30s %-12s held %-8s recovery %-8s %s%s\n", f.At, f.Kind, f.Target, f.Held, f.Recovery, f.Detail, f.Error)
		done = append(done, f)
	}
	return done
}

func (s *suite) apply(ctx context.Context, f *fault) error {
	kill := func(name string) error {
		p := s.byName[name]
		f.Target = name
		p.kill9()
		time.Sleep(time.Second)
		took, err := s.restart(ctx, p)
		f.Recovery = took.Round(time.Millisecond).String()
		return err
	}
	hold := func(set, reset func() error) error {
		if err := set(); err != nil {
			return err
		}
		time.Sleep(4 * time.Second)
		return reset()
	}
	switch f.Kind {
	case killOrders:
		return kill("orders")
	case killPayments:
		return kill("payments")
	case killInventory:
		return kill(f.Target)
	case killPSP:
		return kill("psp")
	case killBroker:
		return kill("kafka")
	case killEtcd:
		return kill("etcd")
	case pauseConsume:
		f.Target = "inventory"
		set := func(paused bool) func() error {
			return func() error {
				for _, n := range []string{"inventory-1", "inventory-2"} {
					if err := s.adminPut(s.byName[n], "/admin/consumption", fmt.Sprintf(`{"paused":%v}`, paused)); err != nil {
						return err
					}
				}
				return nil
			}
		}
		return hold(set(true), set(false))
	case pspErrors, pspLatency:
		f.Target = "psp"
		on := `{"latency_ms":0,"error_rate":1.0}`
		if f.Kind == pspLatency {
			on = `{"latency_ms":1500,"error_rate":0}`
		}
		psp := s.byName["psp"]
		return hold(func() error { return s.adminPut(psp, "/admin/faults", on) },
			func() error { return s.adminPut(psp, "/admin/faults", `{"latency_ms":0,"error_rate":0}`) })
	case duplicates:
		n, err := s.duplicate(ctx, []string{"orders.events", "inventory.events", "payments.events"}, 30)
		f.Detail = fmt.Sprintf("%d messages delivered again", n)
		return err
	case poison:
		f.Target = "payments.events"
		id, err := s.poison(ctx, "payments.events")
		f.Detail = "ce_id " + id
		return err
	case poisonValid:
		f.Target = "orders.events"
		id, err := s.poisonValid(ctx)
		f.Detail = "ce_id " + id + ": orders.placed with one SKU twice"
		return err
	case pgKill:
		f.Target = "payments"
		n, err := s.terminateConnections(ctx, "payments", 5*time.Second)
		f.Detail = fmt.Sprintf("%d connections terminated while psp answered in 300 ms", n)
		return err
	case pspStall:
		return s.sigstop(f, "psp", 8*time.Second)
	case pspLate:
		f.Target = "psp"
		modes := []string{`{"after_charge":"late","late_ms":3000,"rate":0.5}`, `{"after_charge":"drop","rate":0.5}`, `{"after_charge":"error","rate":0.5}`}
		on := modes[int(f.at)%len(modes)]
		f.Detail = on
		psp := s.byName["psp"]
		return hold(func() error { return s.adminPut(psp, "/admin/provider-faults", on) },
			func() error { return s.adminPut(psp, "/admin/provider-faults", `{"after_charge":"","rate":0}`) })
	case pauseBroker:
		return s.sigstop(f, "kafka", s.o.brokerPause)
	case inventoryLag:
		f.Target = "inventory"
		f.Detail = fmt.Sprintf("consumption paused %v, past the %v reservation TTL", reservationTTL+3*time.Second, reservationTTL)
		set := func(paused bool) error {
			for _, n := range []string{"inventory-1", "inventory-2"} {
				if err := s.adminPut(s.byName[n], "/admin/consumption", fmt.Sprintf(`{"paused":%v}`, paused)); err != nil {
					return err
				}
			}
			return nil
		}
		if err := set(true); err != nil {
			return err
		}
		time.Sleep(reservationTTL + 3*time.Second)
		return set(false)
	case etcdEmpty:
		f.Target = "etcd"
		took, err := s.restartEtcdEmpty(ctx)
		f.Recovery = took.Round(time.Millisecond).String()
		return err
	}
	return fmt.Errorf("unknown fault %q", f.Kind)
}

// sigstop stops process name (SIGSTOP) for d, then lets it go on: a
// stalled process, which keeps its connections and answers nothing.
func (s *suite) sigstop(f *fault, name string, d time.Duration) error {
	f.Target = name
	cmd, _ := s.byName[name].running()
	if cmd == nil {
		return fmt.Errorf("%s is not running", name)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	time.Sleep(d)
	f.Detail = fmt.Sprintf("stopped %v", d)
	return cmd.Process.Signal(syscall.SIGCONT)
}

// terminateConnections kills every connection of svc's database, every
// 500 ms for d, while psp answers slowly: payments must log, retry and
// stay up.
func (s *suite) terminateConnections(ctx context.Context, svc string, d time.Duration) (int, error) {
	psp := s.byName["psp"]
	if err := s.adminPut(psp, "/admin/faults", `{"latency_ms":300,"error_rate":0}`); err != nil {
		return 0, err
	}
	defer func() { _ = s.adminPut(psp, "/admin/faults", `{"latency_ms":0,"error_rate":0}`) }()
	conn, err := pgx.Connect(ctx, s.o.dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	total := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
			s.dbPrefix+"_"+svc).Scan(&n); err != nil {
			return total, err
		}
		total += n
	}
	if !s.byName[svc].alive() {
		return total, fmt.Errorf("%s died while its connections were terminated", svc)
	}
	return total, nil
}

// restartEtcdEmpty kills etcd, deletes its data (revisions start again
// from 1, below every fencing token stored) and starts it, then waits
// until both singletons run again: a leader whose writes are fenced off
// for ever would never get there.
func (s *suite) restartEtcdEmpty(ctx context.Context) (time.Duration, error) {
	etcd := s.byName["etcd"]
	etcd.kill9()
	if err := os.RemoveAll(filepath.Join(s.o.dir, "etcd")); err != nil {
		return 0, err
	}
	restarted := time.Now()
	if _, err := s.restart(ctx, etcd); err != nil {
		return time.Since(restarted), err
	}
	// The leaders of the old cluster lose their sessions within a few
	// LEADER_TTLs (2 s here) and stop; a run after that is a new term's.
	newTerms := restarted.Add(6 * time.Second)
	for _, election := range []string{"orders-watchdog", "inventory-expiry"} {
		for s.lastSuccess(election).Before(newTerms) {
			if time.Since(restarted) > 45*time.Second || ctx.Err() != nil {
				return time.Since(restarted), fmt.Errorf("%s has not run since etcd restarted empty", election)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return time.Since(restarted), nil
}

// lastSuccess is the latest singleton_last_success_seconds of election
// reported by any process (only its leader reports it).
func (s *suite) lastSuccess(election string) time.Time {
	var last time.Time
	for _, name := range []string{"orders", "inventory-1", "inventory-2"} {
		resp, err := s.admin.Get(s.byName[name].url + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "singleton_last_success_seconds{") || !strings.Contains(line, `election="`+election+`"`) {
				continue
			}
			fields := strings.Fields(line)
			for _, f := range fields[1:] {
				if v, err := strconv.ParseFloat(f, 64); err == nil {
					if t := time.Unix(0, int64(v*1e9)); t.After(last) {
						last = t
					}
					break
				}
			}
		}
		_ = resp.Body.Close()
	}
	return last
}

// duplicate writes up to n already-delivered messages of each topic
// again, byte for byte (same ce_id): consumers must apply each once.
func (s *suite) duplicate(ctx context.Context, topics []string, n int) (int, error) {
	w := &kafkago.Writer{Addr: kafkago.TCP(strings.Split(s.brokers, ",")...), Balancer: &kafkago.Hash{}, RequiredAcks: kafkago.RequireAll,
		BatchTimeout: time.Millisecond}
	defer w.Close()
	total := 0
	for _, topic := range topics {
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: strings.Split(s.brokers, ","), Topic: topic, Partition: 0, MaxWait: 200 * time.Millisecond})
		var msgs []kafkago.Message
		for len(msgs) < n {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			m, err := r.ReadMessage(rctx)
			cancel()
			if err != nil {
				break // read what there is
			}
			msgs = append(msgs, kafkago.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: m.Headers})
		}
		_ = r.Close()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return total, fmt.Errorf("duplicate %s: %w", topic, err)
		}
		total += len(msgs)
	}
	return total, nil
}

// poison writes a message no consumer can ever process (a payments event
// whose data is not JSON): it must reach the DLQ of every group that
// reads the topic, and consumption must go on.
func (s *suite) poison(ctx context.Context, topic string) (string, error) {
	id := fmt.Sprintf("chaos-poison-%d", time.Now().UnixNano())
	return id, s.inject(ctx, topic, id, "payments.authorized", "/payments", "poison", `{"order_id": `)
}

// poisonValid writes an orders.placed that is valid JSON and a valid
// CloudEvent, and validates field by field, but lists one SKU twice: its
// effect can never apply. Every group that reads it must dead-letter it
// after a bounded number of tries and go on.
func (s *suite) poisonValid(ctx context.Context) (string, error) {
	id := fmt.Sprintf("chaos-poison-valid-%d", time.Now().UnixNano())
	value := `{"order_id":"` + id + `","customer_id":"c-poison","currency":"EUR","total_cents":300,
		"items":[{"sku":"SKU-0005","quantity":1,"unit_price_cents":100},{"sku":"SKU-0005","quantity":2,"unit_price_cents":100}],
		"payment":{"token":"enc_v1.x.y","card_last4":"4242"}}`
	return id, s.inject(ctx, "orders.events", id, "orders.placed", "/orders", id, value)
}

// poisonIDs are the ce_ids of the poison messages injected.
var poisonIDs = map[string]bool{}

// inject writes one poison message, a CloudEvent of type typ from source,
// and remembers its id: it must reach a DLQ.
func (s *suite) inject(ctx context.Context, topic, id, typ, source, key, value string) error {
	poisonIDs[id] = true
	w := &kafkago.Writer{Addr: kafkago.TCP(strings.Split(s.brokers, ",")...), RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	headers := map[string]string{"ce_specversion": "1.0", "ce_id": id, "ce_type": typ, "ce_source": source,
		"ce_time": time.Now().UTC().Format(time.RFC3339Nano), "content-type": "application/json"}
	var hs []kafkago.Header
	for k, v := range headers {
		hs = append(hs, kafkago.Header{Key: k, Value: []byte(v)})
	}
	return w.WriteMessages(ctx, kafkago.Message{Topic: topic, Key: []byte(key), Value: []byte(value), Headers: hs})
}

// deadLetters reads every dead-letter topic to its end.
func (s *suite) deadLetters(ctx context.Context) ([]deadLetter, error) {
	conn, err := kafkago.DialContext(ctx, "tcp", strings.Split(s.brokers, ",")[0])
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out []deadLetter
	for _, topic := range []string{"orders.events.dlq", "inventory.events.dlq", "payments.events.dlq"} {
		parts, err := conn.ReadPartitions(topic)
		if err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			pc, err := kafkago.DialLeader(ctx, "tcp", strings.Split(s.brokers, ",")[0], topic, p.ID)
			if err != nil {
				return nil, err
			}
			last, err := pc.ReadLastOffset()
			_ = pc.Close()
			if err != nil || last == 0 {
				continue
			}
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: strings.Split(s.brokers, ","), Topic: topic, Partition: p.ID, MaxWait: 200 * time.Millisecond})
			for {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				m, err := r.ReadMessage(rctx)
				cancel()
				if err != nil {
					break
				}
				d := deadLetter{Topic: topic}
				for _, h := range m.Headers {
					switch h.Key {
					case "ce_id":
						d.ID = string(h.Value)
					case "dlq_group":
						d.Group = string(h.Value)
					case "dlq_reason":
						d.Reason = string(h.Value)
					}
				}
				d.Injected = poisonIDs[d.ID]
				out = append(out, d)
				if m.Offset+1 >= last {
					break
				}
			}
			_ = r.Close()
		}
	}
	return out, nil
}

type deadLetter struct {
	Topic    string `json:"topic"`
	Group    string `json:"group"`
	ID       string `json:"ce_id"`
	Reason   string `json:"reason"`
	Injected bool   `json:"injected_poison"`
}

func (d deadLetter) String() string {
	b, _ := json.Marshal(d)
	return string(b)
}

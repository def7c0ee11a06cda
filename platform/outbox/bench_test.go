package outbox_test

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/example/sagasuite/platform/kafka"
	"github.com/example/sagasuite/platform/kafkatest"
	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/outbox"
	"github.com/example/sagasuite/platform/postgres"
	"github.com/example/sagasuite/platform/postgrestest"
)

// BenchmarkRelayEndToEnd is the outbox relay on the workload of the peer
// benchmark of Watermill's forwarder (its e2e mode): 8 writers commit one
// message per business transaction as fast as they can, the relay
// publishes to a broker (kfake, in process) and a consumer reads them.
// It reports end-to-end msg/s (first commit to last message consumed) and
// commit→consumed latency. docs/performance.md has the figures.
//
// Its writers write as the services do (postgres.InTx: the row travels
// with BEGIN and COMMIT in one round trip, and is handed to the relay at
// commit: Relay.Write).
//
//	go test -run x -bench RelayEndToEnd -benchtime 20000x ./platform/outbox/
func BenchmarkRelayEndToEnd(b *testing.B) { relayBench(b, false, postgres.InTx) }

// BenchmarkRelayEndToEndBeginFunc is BenchmarkRelayEndToEnd with writers
// that send BEGIN, INSERT and COMMIT one at a time (pgx.BeginFunc), as
// the peer's writers do, and wake the relay, which reads their rows from
// the table (no handover outside InTx): the relay's part alone, like for
// like.
func BenchmarkRelayEndToEndBeginFunc(b *testing.B) {
	relayBench(b, false, func(ctx context.Context, pool *pgxpool.Pool, f func(pgx.Tx) error) error {
		return pgx.BeginFunc(ctx, pool, f)
	})
}

// BenchmarkRelayDrain is the peer's drain mode: the same writers commit
// with the relay stopped, then the relay starts and drains the outbox. It
// reports the relay's own rate (relay start to last message consumed),
// which the end-to-end figure cannot show once the relay keeps up with
// the writers.
func BenchmarkRelayDrain(b *testing.B) { relayBench(b, true, postgres.InTx) }

// inTx runs a writer's transaction.
type inTx func(ctx context.Context, pool *pgxpool.Pool, f func(pgx.Tx) error) error

func relayBench(b *testing.B, drain bool, write inTx) {
	const writers = 8
	ctx := context.Background()
	pool := postgrestest.Pool(b, map[string]fs.FS{"outbox": outbox.Migrations()})
	brokers := kafkatest.Brokers(b)
	topic := fmt.Sprintf("bench.%d", time.Now().UnixNano())
	if err := kafka.EnsureTopics(ctx, brokers, 1, topic); err != nil {
		b.Fatal(err)
	}
	pub, err := kafka.NewPublisher(observe.Discard(), kafka.PublisherConfig{Brokers: brokers})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	relay, err := outbox.NewRelay(pool, pub, observe.Discard(), outbox.RelayConfig{})
	if err != nil {
		b.Fatal(err)
	}
	rctx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	startRelay := func() { go func() { defer close(relayDone); _ = relay.Run(rctx) }() }
	defer func() { stopRelay(); <-relayDone }()
	if !drain {
		startRelay()
	}

	var committed sync.Map // event id → commit time
	received := make(chan time.Duration, b.N)
	reader := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 10 * time.Millisecond})
	defer reader.Close()
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	go func() {
		for {
			m, err := reader.ReadMessage(cctx)
			if err != nil {
				return
			}
			now := time.Now()
			for _, h := range m.Headers {
				if h.Key != "ce_id" {
					continue
				}
				// The writer notes the commit time right after COMMIT
				// returns, which the relay may beat by microseconds.
				at, ok := committed.Load(string(h.Value))
				for !ok {
					time.Sleep(50 * time.Microsecond)
					at, ok = committed.Load(string(h.Value))
				}
				received <- max(0, now.Sub(at.(time.Time)))
			}
		}
	}()

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		wg.Go(func() {
			for i := range n {
				ev, err := kafka.NewEvent("bench.happened", "/bench", fmt.Sprintf("k-%d-%d", w, i%64), map[string]int{"n": i})
				if err != nil {
					b.Error(err)
					return
				}
				if err := write(ctx, pool, func(tx pgx.Tx) error {
					m := outbox.Message{Topic: topic, Event: ev}
					if drain { // rows the relay reads from the table
						return outbox.Write(ctx, tx, m)
					}
					return relay.Write(ctx, tx, m) // handed over at an InTx commit
				}); err != nil {
					b.Error(err)
					return
				}
				relay.Wake()
				committed.Store(ev.ID, time.Now())
			}
		})
	}
	wg.Wait()
	writing := time.Since(start)
	if drain {
		start = time.Now()
		startRelay()
	}
	latencies := make([]time.Duration, 0, b.N)
	timeout := time.After(2 * time.Minute)
	for len(latencies) < b.N {
		select {
		case d := <-received:
			latencies = append(latencies, d)
		case <-timeout:
			b.Fatalf("%d of %d messages consumed within 2 minutes of the last commit", len(latencies), b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(float64(b.N)/writing.Seconds(), "writer-tx/s")
	if !drain { // in a drain, latency is how long rows waited for the relay to start
		b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(0, "ns/op")
}

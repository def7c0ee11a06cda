package admission_test

import (
	"errors"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/admission"
	"github.com/example/sagasuite/platform/observe"
)

// A simulated service that finishes capacity units of work per second,
// offered twice that: the limit must settle where accepted work finishes
// within the target, and the surplus must be refused rather than queued.
func TestLimitSettlesWhereLatencyMeetsTheTarget(t *testing.T) {
	now := time.Unix(0, 0)
	l, err := admission.New(observe.Discard(), admission.Settings{Name: "sim", Target: time.Second, Initial: 100, Min: 10, Max: 100_000,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const capacity, offered = 300.0, 600.0 // per second
	const tick = 10 * time.Millisecond
	var queue []time.Time // accepted, FIFO, served at capacity
	var accepted, shed, late, done int
	var credit float64
	for step := 0; step < 6000; step++ { // 60 s
		now = now.Add(tick)
		for range int(offered * tick.Seconds()) {
			if err := l.Admit(int64(len(queue))); errors.Is(err, admission.ErrOverloaded) {
				shed++
				continue
			}
			queue = append(queue, now)
			accepted++
		}
		credit += capacity * tick.Seconds()
		for ; credit >= 1 && len(queue) > 0; credit-- {
			latency := now.Sub(queue[0])
			queue = queue[1:]
			l.Observe(latency)
			if step > 2000 { // after 20 s of settling
				done++
				if latency > 5*time.Second {
					late++
				}
			}
		}
	}
	if late > done/100 {
		t.Fatalf("%d of %d finished later than the 5 s objective: the limit did not hold the backlog", late, done)
	}
	if shed < accepted/3 {
		t.Fatalf("accepted %d, shed %d: at twice capacity about half must be refused", accepted, shed)
	}
	rate := float64(accepted) / 60
	if rate < 0.9*capacity {
		t.Fatalf("accepted %.0f/s: the limit starves a %v/s service", rate, capacity)
	}
	t.Logf("limit %d, accepted %.0f/s, shed %.0f/s, %d late of %d", l.Limit(), rate, float64(shed)/60, late, done)
}

// An idle system does not grow its limit, and late samples cut it once per
// cooldown, never below Min.
func TestLimitMovesOnlyOnEvidence(t *testing.T) {
	now := time.Unix(0, 0)
	l, _ := admission.New(observe.Discard(), admission.Settings{Target: time.Second, Initial: 100, Min: 10, Cooldown: time.Second,
		Now: func() time.Time { return now }})
	_ = l.Admit(1)
	for range 1000 {
		l.Observe(time.Millisecond)
	}
	if l.Limit() != 100 {
		t.Fatalf("limit %d after fast samples with 1 in flight: an idle system must not grow it", l.Limit())
	}
	for range 50 {
		l.Observe(2 * time.Second)
	}
	if l.Limit() != 90 {
		t.Fatalf("limit %d: a burst of late samples within one cooldown must cut once", l.Limit())
	}
	for range 100 {
		now = now.Add(time.Second)
		l.Observe(2 * time.Second)
	}
	if l.Limit() != 10 {
		t.Fatalf("limit %d, want the floor 10", l.Limit())
	}
	if err := l.Admit(10); !errors.Is(err, admission.ErrOverloaded) {
		t.Fatalf("10 in flight at limit 10: %v", err)
	}
	if err := l.Admit(9); err != nil {
		t.Fatalf("9 in flight at limit 10: %v", err)
	}
}

// After a burst of late samples (sagas a broker outage held up) cut the
// limit to its floor, sagas finishing in time bring it back to where it
// started, even at a light load that never uses it; not beyond.
func TestLimitRecoversToItsStartAfterAnOutage(t *testing.T) {
	now := time.Unix(0, 0)
	l, _ := admission.New(observe.Discard(), admission.Settings{Target: time.Second, Initial: 100, Min: 10, Cooldown: 100 * time.Millisecond,
		Now: func() time.Time { return now }})
	for range 100 {
		now = now.Add(100 * time.Millisecond)
		l.Observe(20 * time.Second)
	}
	if l.Limit() != 10 {
		t.Fatalf("limit %d after the outage's late sagas, want the floor 10", l.Limit())
	}
	_ = l.Admit(1) // light load: one saga in flight
	for range 500 {
		l.Observe(20 * time.Millisecond)
	}
	if l.Limit() != 100 {
		t.Fatalf("limit %d after 500 sagas in time at light load, want back at the initial 100 and no higher", l.Limit())
	}
}

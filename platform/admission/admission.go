// Package admission is load shedding at the door: it refuses new work
// when the work already in flight could not be finished within its
// objective, instead of queueing it without bound (a bulkhead for a whole
// multi-step flow, such as a saga).
//
// The limit on work in flight adapts by AIMD, the additive-increase,
// multiplicative-decrease rule of TCP congestion control, as Netflix's
// concurrency-limits library applies it to services (AIMDLimit): every
// finished unit of work is a sample; one that took longer than Target
// cuts the limit by Backoff, and one that finished in time while the limit
// was being used (or while it is below Initial, to recover from a burst of
// late samples) raises it by one. Little's law does the rest: at a
// steady completion rate the limit settles where latency sits just under
// Target, so accepted work finishes in time and the surplus is refused at
// once with a clear answer. AIMD was chosen over a gradient limit because
// a saga's samples arrive late (when the saga ends) and noisily (they mix
// fast rejections with full sagas); AIMD reacts only to the clear signal
// "finished late", which that delay does not confuse.
//
// To drop it from a service, stop calling Admit: work is then never
// refused, and a backlog grows whenever load exceeds capacity.
package admission

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/observe"
)

// ErrOverloaded means the work was refused: too much is in flight.
var ErrOverloaded = errors.New("overloaded: too much work in flight")

// Settings configure a Limiter. The zero value is valid.
type Settings struct {
	Name string // labels the metrics
	// Target is the latency a finished unit of work must stay under; 0
	// means 1 s. Keep it well under the objective (a saga p99 of 5 s):
	// samples arrive only when work ends, so the limit reacts a Target late.
	Target time.Duration
	// Initial, Min and Max bound the limit; 0 means 100, 10 and 10,000.
	Initial, Min, Max int
	// Backoff multiplies the limit after a late sample; 0 means 0.9.
	Backoff float64
	// Cooldown is the least time between two cuts, so that the burst of
	// late samples one overload produces cuts once; 0 means 100 ms.
	Cooldown time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limiter adapts a limit on work in flight. It is safe for concurrent use.
type Limiter struct {
	s Settings

	mu       sync.Mutex
	limit    float64
	inflight int64
	lastCut  time.Time

	attrs attribute.Set
}

// New returns a limiter at Settings.Initial, reporting through tel.
func New(tel observe.Bundle, s Settings) (*Limiter, error) {
	if err := tel.For("admission " + s.Name); err != nil {
		return nil, err
	}
	if s.Target <= 0 {
		s.Target = time.Second
	}
	if s.Initial <= 0 {
		s.Initial = 100
	}
	if s.Min <= 0 {
		s.Min = 10
	}
	if s.Max <= 0 {
		s.Max = 10_000
	}
	if s.Backoff <= 0 || s.Backoff >= 1 {
		s.Backoff = 0.9
	}
	if s.Cooldown <= 0 {
		s.Cooldown = 100 * time.Millisecond
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Min > s.Max || s.Initial < s.Min || s.Initial > s.Max {
		return nil, errors.New("admission: want Min <= Initial <= Max")
	}
	l := &Limiter{s: s, limit: float64(s.Initial), attrs: attribute.NewSet(attribute.String("limiter", s.Name))}
	meter := tel.Meter("github.com/example/sagasuite/platform/admission")
	limit, err := meter.Int64ObservableGauge("admission.limit", metric.WithDescription("The adaptive limit on work in flight."),
		metric.WithUnit("{request}"))
	if err != nil {
		return nil, err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(limit, int64(l.Limit()), metric.WithAttributeSet(l.attrs))
		return nil
	}, limit)
	return l, err
}

// Admit reports whether new work may start with inflight units already
// under way (however the caller counts them: in this process, or across
// replicas from shared state); ErrOverloaded when it may not. The caller
// counts refusals, with its own reasons.
func (l *Limiter) Admit(inflight int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight = inflight
	if float64(inflight) >= l.limit {
		return ErrOverloaded
	}
	return nil
}

// Observe feeds one finished unit of work's latency to the limit.
func (l *Limiter) Observe(latency time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.s.Now()
	switch {
	case latency > l.s.Target:
		if now.Sub(l.lastCut) >= l.s.Cooldown {
			l.limit = max(float64(l.s.Min), l.limit*l.s.Backoff)
			l.lastCut = now
		}
	case float64(l.inflight)*2 >= l.limit:
		// In time while the limit was in use: probe for more. (An idle
		// system must not grow a limit it never tested.)
		l.limit = min(float64(l.s.Max), l.limit+1)
	case l.limit < float64(l.s.Initial):
		// In time, below the starting limit: recover towards it. A burst
		// of late samples (the sagas a broker outage held up) cuts the
		// limit to the floor; at light load it would stay there, and
		// the next burst would be shed for a capacity problem the
		// suite does not have.
		l.limit++
	}
}

// Limit is the current limit.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

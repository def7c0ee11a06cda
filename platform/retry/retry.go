// Package retry retries idempotent calls with exponential backoff and full
// jitter, under a retry budget. The budget is what keeps retries from
// multiplying an outage: every call deposits a fraction of a token, every
// retry spends a whole one, so retries stay a bounded share of traffic
// (10% by default, plus a small floor per second) however hard the
// dependency fails. Only retry calls that are safe to repeat (reads, or
// writes with an idempotency key).
//
// To drop it from a call site, call the function once.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/observe"
)

// Budget caps retries as a share of calls. It is safe for concurrent use;
// share one per dependency.
type Budget struct {
	mu     sync.Mutex
	ratio  float64
	floor  float64 // tokens per second granted regardless of traffic
	max    float64
	tokens float64
	last   time.Time
	now    func() time.Time
	denied metric.Int64Counter
	attrs  metric.MeasurementOption
}

// BudgetSettings configure a Budget. The zero value is valid.
type BudgetSettings struct {
	Name string // labels the metric
	// Ratio of retries to calls; 0 means 0.1.
	Ratio float64
	// PerSecond retries allowed even without traffic; 0 means 1.
	PerSecond float64
	// Now is the clock; nil means time.Now (tests use a fake one).
	Now func() time.Time
}

// NewBudget returns a budget that starts with a few tokens, reporting
// through tel.
func NewBudget(tel observe.Bundle, s BudgetSettings) (*Budget, error) {
	if err := tel.For("retry budget " + s.Name); err != nil {
		return nil, err
	}
	if s.Ratio <= 0 {
		s.Ratio = 0.1
	}
	if s.PerSecond <= 0 {
		s.PerSecond = 1
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	denied, err := tel.Meter("github.com/example/sagasuite/platform/retry").Int64Counter("retry.budget.denied",
		metric.WithDescription("Retries not made because the budget was spent."), metric.WithUnit("{retry}"))
	if err != nil {
		return nil, err
	}
	max := 10 * s.PerSecond
	b := &Budget{ratio: s.Ratio, floor: s.PerSecond, max: max, tokens: max, last: s.Now(), now: s.Now, denied: denied,
		attrs: metric.WithAttributeSet(attribute.NewSet(attribute.String("budget", s.Name)))}
	denied.Add(context.Background(), 0, b.attrs) // the series exists from the start
	return b, nil
}

func (b *Budget) refill() {
	now := b.now()
	b.tokens = min(b.max, b.tokens+now.Sub(b.last).Seconds()*b.floor)
	b.last = now
}

// deposit is made for every first attempt.
func (b *Budget) deposit() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	b.tokens = min(b.max, b.tokens+b.ratio)
}

// withdraw reports whether a retry may be made, spending a token.
func (b *Budget) withdraw(ctx context.Context) bool {
	b.mu.Lock()
	b.refill()
	ok := b.tokens >= 1
	if ok {
		b.tokens--
	}
	b.mu.Unlock()
	if !ok {
		b.denied.Add(ctx, 1, b.attrs)
	}
	return ok
}

// Policy says how to retry. Attempts and Retryable are required in spirit:
// the zero Policy calls once.
type Policy struct {
	Attempts  int           // total calls, first included; <= 1 means no retry
	Base      time.Duration // first backoff ceiling; 0 means 50 ms
	Max       time.Duration // backoff ceiling; 0 means 1 s
	Budget    *Budget       // nil means unbounded (only for tests)
	Retryable func(error) bool
}

// Do calls fn until it succeeds, fails with a non-retryable error, runs
// out of attempts or budget, or ctx ends (a retry whose backoff would
// outlast ctx's deadline is not started); it returns fn's last error.
func (p Policy) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	base, ceiling := p.Base, p.Max
	if base <= 0 {
		base = 50 * time.Millisecond
	}
	if ceiling <= 0 {
		ceiling = time.Second
	}
	if p.Budget != nil {
		p.Budget.deposit()
	}
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || attempt >= p.Attempts || p.Retryable == nil || !p.Retryable(err) || ctx.Err() != nil {
			return err
		}
		if p.Budget != nil && !p.Budget.withdraw(ctx) {
			return errors.Join(err, ErrBudgetSpent)
		}
		backoff := time.Duration(rand.Int64N(int64(min(ceiling, base<<(attempt-1))) + 1)) // #nosec G404 -- full jitter spreads retries; it needs no unpredictability
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= backoff {
			return err // the caller's budget ends before the retry could start
		}
		trace.SpanFromContext(ctx).AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", attempt+1),
			attribute.String("error", err.Error()), attribute.String("backoff", backoff.String())))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

// ErrBudgetSpent is joined to the last error when the budget stopped a retry.
var ErrBudgetSpent = errors.New("retry budget spent")

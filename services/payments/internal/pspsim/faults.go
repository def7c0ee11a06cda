package pspsim

import (
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/httpserver"
)

// What the provider does wrong after it charged (or refunded): the
// answers that leave the merchant not knowing whether money was taken.
const (
	AfterChargeLate  = "late"  // answer after LateMS
	AfterChargeDrop  = "drop"  // close the connection without an answer
	AfterChargeError = "error" // answer 500
)

// ProviderFaults is GET and PUT /admin/provider-faults: the share Rate
// (0 to 1) of successful charges and refunds that, once booked, are
// answered as AfterCharge says ("" answers normally).
type ProviderFaults struct {
	AfterCharge string  `json:"after_charge"`
	LateMS      int     `json:"late_ms"`
	Rate        float64 `json:"rate"`
}

type providerFaults struct {
	mu sync.RWMutex
	f  ProviderFaults
}

func (p *providerFaults) get() ProviderFaults {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.f
}

func (s *Simulator) getFaults(c echo.Context) error { return c.JSON(http.StatusOK, s.faults.get()) }

func (s *Simulator) putFaults(c echo.Context) error {
	var f ProviderFaults
	if err := httpserver.Bind(c, &f); err != nil {
		return err
	}
	bad := map[string]string{}
	switch f.AfterCharge {
	case "", AfterChargeLate, AfterChargeDrop, AfterChargeError:
	default:
		bad["after_charge"] = `one of "", "late", "drop", "error"`
	}
	if f.LateMS < 0 || f.LateMS > 60_000 || (f.AfterCharge == AfterChargeLate && f.LateMS == 0) {
		bad["late_ms"] = "0 to 60000, above 0 with after_charge late"
	}
	if f.Rate < 0 || f.Rate > 1 || (f.AfterCharge != "" && f.Rate == 0) {
		bad["rate"] = "0.0 to 1.0, above 0 with an after_charge fault"
	}
	if err := httpserver.Invalid(bad); err != nil {
		return err
	}
	s.faults.mu.Lock()
	s.faults.f = f
	s.faults.mu.Unlock()
	return c.JSON(http.StatusOK, f)
}

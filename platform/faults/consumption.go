package faults

import (
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/httpserver"
)

// Pausable is a Kafka consumer an operator can stop taking messages
// (kafka.Consumer).
type Pausable interface {
	Pause()
	Resume()
	Paused() bool
}

// Consumption is the process's consumers as one switch: a stuck queue
// on demand.
type Consumption struct {
	Consumers []Pausable
	Log       *slog.Logger // where an operator's change is logged; nil: slog.Default
}

// Paused reports whether consumption is paused (false without consumers).
func (c Consumption) Paused() bool { return len(c.Consumers) > 0 && c.Consumers[0].Paused() }

// Probe reports paused consumption to Injector.Export as the kind
// consumption_paused.
func (c Consumption) Probe() (string, bool) { return "consumption_paused", c.Paused() }

type consumptionState struct {
	Paused *bool `json:"paused"`
}

// Routes serves GET and PUT /consumption on g (the admin group):
// {"paused": true} stops taking new messages; messages already with a
// worker finish, partitions stay assigned.
func (c Consumption) Routes(g *echo.Group) {
	g.GET("/consumption", c.serve)
	g.PUT("/consumption", c.serve)
}

func (c Consumption) serve(ctx echo.Context) error {
	if ctx.Request().Method == http.MethodPut {
		var req consumptionState
		if err := httpserver.Bind(ctx, &req); err != nil {
			return err
		}
		if req.Paused == nil {
			return httpserver.Invalid(map[string]string{"paused": "required, true or false"})
		}
		for _, k := range c.Consumers {
			if *req.Paused {
				k.Pause()
			} else {
				k.Resume()
			}
		}
		log := c.Log
		if log == nil {
			log = slog.Default()
		}
		log.WarnContext(ctx.Request().Context(), "kafka consumption changed by an operator", "paused", *req.Paused)
	}
	paused := c.Paused()
	return ctx.JSON(http.StatusOK, consumptionState{Paused: &paused})
}

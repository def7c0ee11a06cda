package httpapi

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/projection"
)

// Projections are the read models an operator can inspect and rebuild.
type Projections map[string]*projection.Projector

type projectionAdmin struct{ projections Projections }

func (a *projectionAdmin) status(c echo.Context) error {
	out := make([]projection.Status, 0, len(a.projections))
	for _, p := range a.projections {
		if err := p.Refresh(c.Request().Context()); err != nil {
			return err
		}
		out = append(out, p.Status())
	}
	return c.JSON(http.StatusOK, out)
}

// rebuild starts rebuilding a read model from event zero; GET
// /admin/projections shows its progress.
func (a *projectionAdmin) rebuild(c echo.Context) error {
	p, ok := a.projections[c.Param("name")]
	if !ok {
		return httpserver.NewError(http.StatusNotFound, "projection_not_found", "no projection with that name")
	}
	if err := p.RequestRebuild(); errors.Is(err, projection.ErrRebuildRunning) {
		return httpserver.NewError(http.StatusConflict, "rebuild_running", "a rebuild of this projection is already running")
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, p.Status())
}

package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// service names the parts of a service's shape that carry its name.
type service struct {
	name, events, domain, db string
}

// shape is the package layout every service has, the generated ones too
// (README, "Each service has the same shape"): a main that wires
// everything, its contract module, the domain, the use cases behind their
// ports with a fake and the one suite both implementations pass, and the
// three adapters.
func (s service) shape() []string {
	return []string{
		"cmd/" + s.name,
		s.events,
		"internal/" + s.domain,
		"internal/app",
		"internal/app/appfake",
		"internal/app/apptest",
		"internal/" + s.db,
		"internal/httpapi",
		"internal/saga",
	}
}

// checkShape fails t for each package of the shape that dir lacks, and
// returns the service's packages beyond the shape (its own adapters).
func checkShape(t *testing.T, dir string, s service) []string {
	t.Helper()
	var have []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		rel, err := filepath.Rel(dir, filepath.Dir(path))
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); rel != "." && !slices.Contains(have, rel) {
			have = append(have, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := s.shape()
	for _, p := range want {
		if !slices.Contains(have, p) {
			t.Errorf("%s has no package %s/ (the shape: %s)", s.name, p, strings.Join(want, ", "))
		}
	}
	var extra []string
	for _, p := range have {
		if !slices.Contains(want, p) && !strings.HasPrefix(p, s.events+"/") {
			extra = append(extra, p)
		}
	}
	slices.Sort(extra)
	return extra
}

// The three services have the shape; what each has beyond it is listed
// here, so a new package is a decision this test records.
func TestEveryServiceHasTheSameShape(t *testing.T) {
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		service
		extra []string
	}{
		{service{"orders", "orderevents", "order", "ordersdb"},
			[]string{"internal/announce", "internal/cardseal", "internal/inventory", "internal/readmodel", "internal/watchdog"}},
		{service{"payments", "paymentevents", "payment", "paymentsdb"},
			[]string{"cmd/psp", "internal/pspclient", "internal/pspsim"}},
		{service{"inventory", "inventoryevents", "catalog", "inventorydb"}, nil},
	} {
		extra := checkShape(t, filepath.Join(repo, "services", tc.name), tc.service)
		if !slices.Equal(extra, tc.extra) {
			t.Errorf("%s has, beyond the shape, %v; this test lists %v", tc.name, extra, tc.extra)
		}
	}
}

package catalog_test

import (
	"testing"

	"github.com/example/sagasuite/services/inventory/internal/catalog"
)

func TestSeedMatchesContract(t *testing.T) {
	ps := catalog.Seed(1_000_000)
	if len(ps) != 100 || ps[0].SKU != "SKU-0001" || ps[99].SKU != "SKU-0100" {
		t.Fatalf("seed: %d products, first %s, last %s", len(ps), ps[0].SKU, ps[len(ps)-1].SKU)
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if p.PriceCents < 100 || p.PriceCents > 10000 {
			t.Errorf("%s price %d outside 100..10000", p.SKU, p.PriceCents)
		}
		if p.Available != 1_000_000 || seen[p.SKU] {
			t.Errorf("%s: available %d, duplicate %v", p.SKU, p.Available, seen[p.SKU])
		}
		seen[p.SKU] = true
	}
}

package main

import (
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// fold sums each stack's samples into every frame on it, root first, and
// draw gives each box its share of the width.
func TestFoldAndDraw(t *testing.T) {
	fn := func(id uint64, name string) *profile.Function { return &profile.Function{ID: id, Name: name} }
	main, a, b := fn(1, "main.main"), fn(2, "pkg.a"), fn(3, "pkg.b")
	loc := func(id uint64, f *profile.Function) *profile.Location {
		return &profile.Location{ID: id, Line: []profile.Line{{Function: f}}}
	}
	lm, la, lb := loc(1, main), loc(2, a), loc(3, b)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{la, lm}, Value: []int64{1, 30}}, // main → a
			{Location: []*profile.Location{lb, la, lm}, Value: []int64{1, 10}},
			{Location: []*profile.Location{lb, lm}, Value: []int64{1, 60}},
		},
		Function: []*profile.Function{main, a, b}, Location: []*profile.Location{lm, la, lb},
	}
	root := fold(p)
	m := root.children["main.main"]
	if root.value != 100 || m.value != 100 || m.children["pkg.a"].value != 40 || m.children["pkg.b"].value != 60 ||
		m.children["pkg.a"].children["pkg.b"].value != 10 {
		t.Fatalf("folded wrongly: root %d, main %d", root.value, m.value)
	}
	var out strings.Builder
	if err := draw(&out, root, "t", 1000); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<title>pkg.a (40.00%)</title><rect x="0.0"`, `<title>pkg.b (60.00%)</title><rect x="400.0"`, `width="100.0"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the SVG lacks %q", want)
		}
	}
}

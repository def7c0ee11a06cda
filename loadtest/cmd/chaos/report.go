package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

type report struct {
	Seed        uint64         `json:"seed"`
	Rate        float64        `json:"rate"`
	Duration    string         `json:"duration"`
	Passed      bool           `json:"passed"`
	Load        loadSummary    `json:"orders"`
	Outcomes    map[string]int `json:"outcomes"`
	Faults      []fault        `json:"faults"`
	SettledIn   string         `json:"settled_in"`
	Invariants  []invariant    `json:"invariants"`
	DeadLetters []deadLetter   `json:"dead_letters"`
}

func (r report) print(w io.Writer) {
	fmt.Fprintf(w, "\nchaos report (seed %d, %s at %.0f/s)\n", r.Seed, r.Duration, r.Rate)
	fmt.Fprintf(w, "orders: %d offered, %d accepted, refused %v, %d unanswered; POST p99 %s\n",
		r.Load.Offered, r.Load.Accepted, r.Load.Refused, r.Load.Unknown, r.Load.PostP99)
	keys := make([]string, 0, len(r.Outcomes))
	for k := range r.Outcomes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Outcomes[k]))
	}
	fmt.Fprintf(w, "outcomes: %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(w, "faults: %d; settled %s after healing; dead letters: %d\n", len(r.Faults), r.SettledIn, len(r.DeadLetters))
	for _, inv := range r.Invariants {
		mark := "PASS"
		if !inv.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %s (%d checked)\n", mark, inv.Name, inv.Checked)
		for _, f := range inv.Failures {
			fmt.Fprintf(w, "        %s\n", f)
		}
	}
	passed, failed := 0, 0
	for _, inv := range r.Invariants {
		if inv.Passed {
			passed++
		} else {
			failed++
		}
	}
	fmt.Fprintf(w, "invariants: %d passed, %d failed\n", passed, failed)
}

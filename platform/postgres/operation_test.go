package postgres

import "testing"

func TestOperationIsTheFirstWordInUpperCase(t *testing.T) {
	for sql, want := range map[string]string{
		"SELECT 1":                        "SELECT",
		"\n\t  insert into t values (1)":  "INSERT",
		"Commit":                          "COMMIT",
		"BEGIN":                           "BEGIN",
		"   ":                             "SQL",
		"":                                "SQL",
		"WITH x AS (SELECT 1) SELECT * x": "WITH",
	} {
		if got := operation(sql); got != want {
			t.Errorf("operation(%q) = %q, want %q", sql, got, want)
		}
	}
}

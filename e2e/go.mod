module github.com/example/sagasuite/e2e

go 1.26.0

require github.com/example/sagasuite/platform v0.0.0

// The platform lives in this repository; go.work uses it too.
replace github.com/example/sagasuite/platform => ../platform

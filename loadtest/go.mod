module github.com/example/sagasuite/loadtest

go 1.26.0

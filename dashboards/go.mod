module github.com/example/sagasuite/dashboards

go 1.26.0

module github.com/tsim-dev/tsim

go 1.26.0

require (
	github.com/mattn/go-isatty v0.0.24
	github.com/rs/zerolog v1.35.1
	github.com/urfave/cli/v3 v3.14.0
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.29.0 // indirect
)

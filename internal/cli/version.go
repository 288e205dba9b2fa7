package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	ucli "github.com/urfave/cli/v3"
)

// Stamped at build time by `make dist` with -ldflags -X.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
}

func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.Date == "" {
					b.Date = s.Value
				}
			}
		}
	}
	return b
}

func versionString() string {
	b := currentBuild()
	s := b.Version
	if b.Commit != "" {
		c := b.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += " (" + c
		if b.Date != "" {
			s += ", " + b.Date
		}
		s += ")"
	}
	return s
}

func (a *app) versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print version, commit and build date",
		Action: func(ctx context.Context, cmd *ucli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			b := currentBuild()
			if !a.textOut(cmd) {
				out, _ := json.Marshal(b)
				_, err := fmt.Fprintf(a.io.Out, "%s\n", out)
				return err
			}
			_, err := fmt.Fprintf(a.io.Out, "tsim %s\ncommit %s\nbuilt  %s\n%s\n", b.Version, orDash(b.Commit), orDash(b.Date), b.Go)
			return err
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

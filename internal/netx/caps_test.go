package netx

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/testenv"
)

func TestCaps(t *testing.T) {
	tests := []struct {
		name, status string
		missing      string
		bad          bool
	}{
		{"root", "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n", "", false},
		{"net admin and sys admin only", "CapEff:\t0000000000201000\n", "", false},
		{"net admin only", "CapEff:\t0000000000001000\n", "CAP_SYS_ADMIN", false},
		{"unprivileged user", "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n", "CAP_NET_ADMIN CAP_SYS_ADMIN", false},
		{"no CapEff", "Name:\tx\n", "", true},
		{"garbage", "CapEff:\tzz\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eff, err := EffectiveCaps(tt.status)
			if (err != nil) != tt.bad {
				t.Fatalf("err %v, want error %v", err, tt.bad)
			}
			if err != nil {
				return
			}
			if got := strings.Join(MissingCaps(eff), " "); got != tt.missing {
				t.Errorf("missing %q, want %q", got, tt.missing)
			}
		})
	}
}

// TestCheckCapabilitiesNotUID runs the check in a child that is root but
// lacks CAP_NET_ADMIN (dropped from its bounding set with setpriv): the
// uid alone must not pass it.
func TestCheckCapabilitiesNotUID(t *testing.T) {
	if os.Getenv("TSIM_CAPS_CHILD") == "1" {
		if err := Check(); err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(3)
		}
		os.Exit(0)
	}
	testenv.NeedRoot(t, "sudo go test ./internal/netx/")
	testenv.NeedTools(t, "setpriv") // util-linux
	setpriv, _ := exec.LookPath("setpriv")
	if err := Check(); err != nil {
		t.Fatalf("root with every capability: %v", err)
	}
	cmd := exec.Command(setpriv, "--bounding-set=-net_admin", "--inh-caps=-all", os.Args[0], "-test.run=^TestCheckCapabilitiesNotUID$")
	cmd.Env = append(os.Environ(), "TSIM_CAPS_CHILD=1")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("child as root without CAP_NET_ADMIN: err %v, out %q; want exit 3", err, out)
	}
	if !strings.Contains(string(out), "lacks CAP_NET_ADMIN") || strings.Contains(string(out), "CAP_SYS_ADMIN;") {
		t.Errorf("message %q does not name the missing capability", out)
	}
}

//go:build pam

package serve

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run executes a system administration command for the test fixture.
func run(t *testing.T, stdin string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TestPAMLogin creates a throw-away Linux account with a password, logs in
// through PAM (pam_unix, from a private configuration directory so the
// host's /etc/pam.d is not touched) and removes the account again. The
// admin role follows membership of the admin group.
func TestPAMLogin(t *testing.T) {
	requireRoot(t)
	b := make([]byte, 4)
	rand.Read(b)
	suffix := hex.EncodeToString(b)
	user, group := "tsimpam"+suffix, "tsimadm"+suffix
	password := "Pam-" + suffix + "-pass"

	run(t, "", "groupadd", group)
	t.Cleanup(func() { exec.Command("groupdel", group).Run() })
	run(t, "", "useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--groups", group, user)
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", user).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v %s", user, err, out)
		}
	})
	run(t, user+":"+password+"\n", "chpasswd")

	conf := t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "tsim"), []byte("auth required pam_unix.so\naccount required pam_unix.so\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewPAM("tsim", group)
	if err != nil {
		t.Fatal(err)
	}
	a.(*pamAuth).confDir = conf

	e := newEnv(t, func(c *Config) { c.PAM = a })
	c := e.client()
	r := c.do("POST", "/api/login", map[string]string{"username": user, "password": password})
	if r.status != 200 {
		t.Fatalf("PAM login: %d %s", r.status, r.body)
	}
	if m := r.json(t); m["method"] != "pam" || m["role"] != "admin" {
		t.Errorf("PAM login answer %v: want method pam, role admin (member of %s)", m, group)
	}
	if r := c.do("GET", "/api/admin/overview", nil); r.status != 200 {
		t.Errorf("PAM admin overview: %d", r.status)
	}
	if r := e.client().do("POST", "/api/login", map[string]string{"username": user, "password": password + "x"}); r.status != 401 {
		t.Errorf("wrong PAM password: %d %s", r.status, r.body)
	}
	// Out of the group, the same account is a plain user.
	run(t, "", "gpasswd", "--delete", user, group)
	r = e.client().do("POST", "/api/login", map[string]string{"username": user, "password": password})
	if m := r.json(t); r.status != 200 || m["role"] != "user" {
		t.Errorf("after leaving %s: %d %v", group, r.status, m)
	}
	// A local account is never checked against PAM: alice's PAM-less
	// password mismatch stays a failure.
	if r := e.client().do("POST", "/api/login", map[string]string{"username": "alice", "password": password}); r.status != 401 {
		t.Errorf("local user with a wrong password: %d", r.status)
	}
	if !strings.Contains(e.audit.String(), `"method":"pam"`) {
		t.Errorf("audit log lacks the PAM login:\n%s", e.audit.String())
	}
}

//go:build pam

package serve

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"sync"

	"github.com/msteinert/pam/v2"

	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/internal/users"
)

// PAMAvailable reports whether this binary was built with -tags pam.
const PAMAvailable = true

// pamAuth checks passwords through a PAM service; members of adminGroup
// get the admin role, everyone else the user role.
type pamAuth struct {
	service, adminGroup string
	confDir             string     // tests: a private PAM configuration directory
	mu                  sync.Mutex // some modules are not reentrant
}

// NewPAM returns a PAM authenticator for service (a file in /etc/pam.d).
func NewPAM(service, adminGroup string) (Authenticator, error) {
	if service == "" {
		return nil, tsimerr.Inputf("PAM login: empty service name")
	}
	return &pamAuth{service: service, adminGroup: adminGroup}, nil
}

func (p *pamAuth) Name() string { return "pam" }

func (p *pamAuth) Authenticate(ctx context.Context, name, password string) (string, error) {
	if users.ValidName(name) != nil {
		return "", ErrBadCredentials
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	conv := pam.ConversationFunc(func(s pam.Style, msg string) (string, error) {
		switch s {
		case pam.PromptEchoOff:
			return password, nil
		case pam.PromptEchoOn:
			return name, nil
		case pam.ErrorMsg, pam.TextInfo:
			return "", nil
		}
		return "", errors.New("unsupported PAM conversation")
	})
	var t *pam.Transaction
	var err error
	if p.confDir != "" {
		t, err = pam.StartConfDir(p.service, name, conv, p.confDir)
	} else {
		t, err = pam.Start(p.service, name, conv)
	}
	if err != nil {
		return "", fmt.Errorf("pam start %s: %w", p.service, err)
	}
	defer t.End()
	if err := t.Authenticate(pam.Silent | pam.DisallowNullAuthtok); err != nil {
		return "", ErrBadCredentials
	}
	if err := t.AcctMgmt(pam.Silent | pam.DisallowNullAuthtok); err != nil {
		return "", ErrBadCredentials
	}
	return p.role(name), nil
}

// role is admin when the user is a member (primary or supplementary) of
// the admin group.
func (p *pamAuth) role(name string) string {
	if p.adminGroup == "" {
		return users.RoleUser
	}
	u, err := user.Lookup(name)
	if err != nil {
		return users.RoleUser
	}
	g, err := user.LookupGroup(p.adminGroup)
	if err != nil {
		return users.RoleUser
	}
	gids, err := u.GroupIds()
	if err == nil && slices.Contains(gids, g.Gid) || u.Gid == g.Gid {
		return users.RoleAdmin
	}
	return users.RoleUser
}

//go:build !pam

package serve

import "github.com/tsim-dev/tsim/internal/tsimerr"

// PAMAvailable reports whether this binary was built with -tags pam.
const PAMAvailable = false

// NewPAM fails: this binary was built without PAM.
func NewPAM(service, adminGroup string) (Authenticator, error) {
	return nil, tsimerr.Inputf("PAM login: this tsim was built without PAM (rebuild with -tags pam)")
}

package facts

import (
	"strings"
	"unicode/utf8"
)

// Helpers that split and trim lines as the strings package does, without
// allocating on every line of a facts file.

// appendFields appends the fields of s, exactly as strings.Fields splits
// them, to dst. Given a small array for dst, a short line costs nothing.
func appendFields(dst []string, s string) []string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			// Unicode spaces separate fields too: leave them to Fields.
			return append(dst, strings.Fields(s)...)
		}
	}
	start := -1 // where the current field began, -1 between fields
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		dst = append(dst, s[start:])
	}
	return dst
}

// trimRightBlanks is strings.TrimRight(s, " \t\r") without building the
// cutset on each of the file's lines.
func trimRightBlanks(s string) string {
	for len(s) > 0 {
		switch s[len(s)-1] {
		case ' ', '\t', '\r':
			s = s[:len(s)-1]
		default:
			return s
		}
	}
	return s
}

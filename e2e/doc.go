// Package e2e drives the running suite from outside, as a user would.
package e2e

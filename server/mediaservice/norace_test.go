//go:build !race

package mediaservice_test

// raceSlowdown: see race_test.go.
const raceSlowdown = 1

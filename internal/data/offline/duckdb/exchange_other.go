//go:build !linux

package duckdb

func exchange(staged, target string) error { return exchangeByRenames(staged, target) }

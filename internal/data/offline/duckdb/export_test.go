package duckdb

// SetProfileReadValues sets the bound on the values one profile query reads
// (a day of more is read in groups of columns) and returns the restore.
func SetProfileReadValues(n int64) (restore func()) {
	old := profileReadValues
	profileReadValues = n
	return func() { profileReadValues = old }
}

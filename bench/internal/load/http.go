package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// PostJSON posts body (JSON) to url and returns the answer's body, an error
// naming the status and the answer's start unless the status is 200.
func PostJSON(ctx context.Context, c *http.Client, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %.300s", resp.StatusCode, b)
	}
	return b, nil
}

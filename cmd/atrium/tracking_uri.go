package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/internal/serving/register"
)

// trackingURI is the --tracking-uri flag of fit and train: the URL of a
// tracking server (an atrium serve, or an MLflow server with its artifact
// proxy) to track and register through instead of the project's own
// stores. Unset, it defaults to $MLFLOW_TRACKING_URI, as the MLflow client
// does.
type trackingURI struct{ flag string }

// addFlag defines --tracking-uri on cmd with usage.
func (u *trackingURI) addFlag(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVar(&u.flag, "tracking-uri", "", usage)
}

// explicit reports whether --tracking-uri was given on the command line.
func (u *trackingURI) explicit() bool { return u.flag != "" }

// url is the flag's value, else $MLFLOW_TRACKING_URI ("" for the
// project's stores).
func (u *trackingURI) url() string {
	if u.flag != "" {
		return u.flag
	}
	return os.Getenv("MLFLOW_TRACKING_URI")
}

// tracker is where runs, artifacts and versions go: the server at url()
// (http or https) through its MLflow API and artifact proxy, authenticated
// with MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME and _PASSWORD, or
// the project's own stores when no URL is set (and always for a nil u: the
// demo's steps ignore MLFLOW_TRACKING_URI). Another URL is a usage error
// naming the flag.
func (u *trackingURI) tracker(e *env) (register.Tracker, error) {
	if u == nil {
		return registryStores(e)
	}
	uri := u.url()
	if uri == "" {
		return registryStores(e)
	}
	if !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://") {
		from := "--tracking-uri"
		if !u.explicit() {
			from = "--tracking-uri (from MLFLOW_TRACKING_URI)"
		}
		return nil, usagef("%s %q: want the http(s) URL of a tracking server (an atrium serve); leave it unset for the project's own stores", from, uri)
	}
	return &register.Remote{URL: uri, Token: os.Getenv("MLFLOW_TRACKING_TOKEN"),
		Username: os.Getenv("MLFLOW_TRACKING_USERNAME"), Password: os.Getenv("MLFLOW_TRACKING_PASSWORD")}, nil
}

# shellcheck shell=bash
# Source this file: atrium_project DIR PARQUET FEATURES writes an Atrium project
# in DIR whose feature set listing_stats (entity listing, join key listing_id,
# ttl 30d) reads the Parquet file gen_data.py wrote: features f00..f<N-1>, every
# fifth a string, the others float64 (the schema of Feast's feature view).
atrium_project() {
	local dir=$1 parquet=$2 features=$3 f name type
	mkdir -p "$dir/features"
	{
		echo "entities:"
		echo "  - {name: listing, join_keys: [listing_id]}"
		echo "sources:"
		echo "  - {name: stats, format: parquet, path: $parquet, timestamp: event_timestamp}"
		echo "feature_sets:"
		echo "  - name: listing_stats"
		echo "    entity: listing"
		echo "    source: stats"
		echo "    ttl: 30d"
		echo "    features:"
		for f in $(seq 0 $((features - 1))); do
			name=$(printf 'f%02d' "$f")
			type=float64
			[ $((f % 5)) -eq 4 ] && type=string
			echo "      - {name: $name, type: $type, expr: $name}"
		done
	} >"$dir/features/bench.yaml"
}

package tracking

import (
	"fmt"
	"math/rand/v2"
)

// Run and logged-model names default to "<adjective>-<animal>-<n>", the shape
// MLflow users know ("bright-fox-123"), at most 20 characters.
var (
	nameAdjectives = []string{
		"able", "bold", "brave", "bright", "calm", "clever", "crisp", "dapper", "eager",
		"fair", "fast", "gentle", "glad", "grand", "keen", "kind", "lucky", "merry",
		"neat", "nimble", "polite", "proud", "quick", "quiet", "rare", "sharp", "shy",
		"silent", "sleek", "smart", "snug", "sunny", "swift", "tidy", "vast", "warm", "wise", "witty",
	}
	nameAnimals = []string{
		"ant", "bat", "bear", "bee", "boar", "cat", "colt", "crab", "crow", "deer", "doe",
		"dog", "dove", "duck", "eel", "elk", "finch", "fox", "frog", "goat", "hare", "hawk",
		"hen", "jay", "koi", "lark", "lynx", "mole", "moth", "newt", "owl", "ox", "seal",
		"shrew", "slug", "snail", "stork", "swan", "toad", "vole", "wasp", "wolf", "worm", "yak",
	}
)

func randomName() string {
	name := fmt.Sprintf("%s-%s-%d",
		nameAdjectives[rand.IntN(len(nameAdjectives))], nameAnimals[rand.IntN(len(nameAnimals))], rand.IntN(1000))
	if len(name) > 20 {
		name = name[:20]
	}
	return name
}

package policy

import (
	"embed"
	"io/fs"
	"sync"
)

//go:embed stock
var stockFS embed.FS

//go:embed stock/cloudmux/fixtures/data.json
var stockFixtures []byte

// StockVersion names the built-in policy: the version in force until an
// admin activates one of their own.
const StockVersion = "stock"

var stockOnce = sync.OnceValues(func() (Bundle, error) {
	sub, err := fs.Sub(stockFS, "stock")
	if err != nil {
		return Bundle{}, err
	}
	return LoadDir(sub)
})

// Stock returns the built-in policy bundle (policy/stock): its modules,
// its tests and its fixtures as data.cloudmux.fixtures.
func Stock() Bundle {
	b, err := stockOnce()
	if err != nil {
		panic("policy: the embedded stock policy does not load: " + err.Error())
	}
	return b
}

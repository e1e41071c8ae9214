package main

import (
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

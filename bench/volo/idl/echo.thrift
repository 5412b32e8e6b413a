// The benchmark's service: the smallest call that still crosses the codec both ways.


service Echo {
    binary echo(1: binary payload)
}

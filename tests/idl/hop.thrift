namespace rs hop

/** One hop of a traced chain: client -> A -> B. */
service Hop {
  /** A passes the call on to the next hop; the last hop says what it saw of its caller. */
  string relay(1: string note)
}

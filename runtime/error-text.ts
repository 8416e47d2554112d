/** What went wrong, as one message for a log line or a user: an Error's message, else the thrown value as text. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

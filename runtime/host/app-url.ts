/** `rtmfp://host/app/a/b?x=1` → app, path `a/b`, properties {x: '1'}. */
export function splitUrl(
  url: string,
  fallbackApp = '',
): { app: string; path: string; properties: Record<string, string> } {
  const m = /^[a-z]+:\/\/[^/]*\/?([^?#]*)(?:\?([^#]*))?/i.exec(url);
  const segments = (m?.[1] ?? '').split('/').filter(Boolean).map(safeDecode);
  const properties: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(m?.[2] ?? '')) properties[k] = v;
  return { app: segments[0] ?? fallbackApp, path: segments.slice(1).join('/'), properties };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

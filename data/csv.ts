// CSV as RFC 4180 writes it (spreadsheets export label tables so): fields split on commas,
// a quoted field may hold commas, newlines and doubled quotes (""), and its quotes are not
// part of the value.

/** One record: its fields and the line it starts on (1-based, for messages). */
export interface CsvRow {
  fields: string[];
  line: number;
}

/** Parses CSV text; an unclosed quote is an error naming the line it opened on. */
export function parseCsv(text: string): CsvRow[] {
  const rows: CsvRow[] = [];
  let fields: string[] = [], field = "", line = 1, start = 1, i = 0;
  const endRow = () => {
    fields.push(field);
    rows.push({ fields, line: start });
    fields = [];
    field = "";
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '"' && field.trim() === "") {
      const opened = line;
      field = "";
      for (i++;; i++) {
        if (i >= text.length) throw new Error(`line ${opened}: a quoted field is never closed`);
        if (text[i] === '"' && text[i + 1] === '"') (field += '"', i++);
        else if (text[i] === '"') break;
        else {
          if (text[i] === "\n") line++;
          field += text[i];
        }
      }
      i++;
      continue;
    }
    if (c === ",") (fields.push(field), field = "");
    else if (c === "\n") (endRow(), line++, start = line);
    else if (c !== "\r" || text[i + 1] !== "\n") field += c;
    i++;
  }
  if (field !== "" || fields.length) endRow();
  return rows;
}

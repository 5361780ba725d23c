/// Splits one CSV record (RFC 4180 quoting: fields in double quotes, "" for a quote inside) into fields.
/// Records are one physical line each: a newline inside a field must be written as the two characters `\n`.
public enum CSVLine {
    public static func split(_ line: Substring) throws(JSONSyntaxError) -> [String] {
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var wasQuoted = false
        var it = line.unicodeScalars.makeIterator()
        var col = 0
        while let c = it.next() {
            col += 1
            if inQuotes {
                if c == "\"" {
                    // Peek: a doubled quote is a literal quote.
                    if let n = it.next() {
                        col += 1
                        if n == "\"" { field.unicodeScalars.append("\"") }
                        else if n == "," { inQuotes = false; fields.append(field); field = ""; wasQuoted = false }
                        else { throw JSONSyntaxError(reason: "unexpected character after closing quote", offset: col) }
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.unicodeScalars.append(c)
                }
            } else if c == "," {
                fields.append(field); field = ""; wasQuoted = false
            } else if c == "\"" {
                if !field.isEmpty || wasQuoted { throw JSONSyntaxError(reason: "quote inside an unquoted field", offset: col) }
                inQuotes = true; wasQuoted = true
            } else {
                field.unicodeScalars.append(c)
            }
        }
        if inQuotes { throw JSONSyntaxError(reason: "unterminated quoted field", offset: col) }
        fields.append(field)
        return fields
    }
}

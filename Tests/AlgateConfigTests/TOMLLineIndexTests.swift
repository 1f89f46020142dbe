@testable import AlgateConfig
import Testing

@Suite("Key lines")
struct TOMLLineIndexTests {
    func line(_ path: String, in text: String) -> Int? {
        let index = TOMLLineIndex(scanning: text)
        let match = index.lines.first { $0.key.description == path }
        return match?.value
    }

    @Test func tablesArraysAndKeys() {
        let text = """
            top = 1                      # line 1
            [a]                          # 2
            x = "[not] a = header"       # 3
            'quoted.key' = 2             # 4
            [[arr]]                      # 5
            k = 1                        # 6
            [[arr]]                      # 7
            k = 2                        # 8
            [arr.sub]                    # 9
            deep.er = 3                  # 10
            """
        #expect(line("top", in: text) == 1)
        #expect(line("a", in: text) == 2)
        #expect(line("a.x", in: text) == 3)
        #expect(line("a.\"quoted.key\"", in: text) == 4)
        #expect(line("arr", in: text) == 5)
        #expect(line("arr[0]", in: text) == 5)
        #expect(line("arr[0].k", in: text) == 6)
        #expect(line("arr[1]", in: text) == 7)
        #expect(line("arr[1].k", in: text) == 8)
        #expect(line("arr[1].sub", in: text) == 9)
        #expect(line("arr[1].sub.deep.er", in: text) == 10)
        #expect(line("arr[1].sub.deep", in: text) == 10)
    }

    @Test func multiLineStringsAndArraysDoNotConfuseTheScan() {
        let text = """
            s = \"\"\"
            fake = 1
            [fake]
            \"\"\"
            lit = '''
            [[fake]]
            '''
            list = [
              "a", # comment with = sign
              { k = 1 },
            ]
            after = true
            """
        #expect(line("s", in: text) == 1)
        #expect(line("fake", in: text) == nil)
        #expect(line("lit", in: text) == 5)
        #expect(line("list", in: text) == 8)
        #expect(line("list[0]", in: text) == 9)
        #expect(line("list[1]", in: text) == 10)
        #expect(line("list[1].k", in: text) == 10)
        #expect(line("after", in: text) == 12)
    }

    @Test func crlfLineEndings() throws {
        let text = "[pinholes]\r\nports = \"1-2\"\r\n\r\n[[ftp]]\r\nlisten = \"127.0.0.1:21\"\r\nbogus = 1\r\n"
        #expect(line("ftp[0].bogus", in: text) == 6)
        let error = try #require(parseError(text))
        #expect(error.key == "ftp[0].bogus")
        #expect(error.line == 6)
    }

    @Test func enclosingTableLineIsTheFallback() {
        let index = TOMLLineIndex(scanning: "a = 1\n[t]\nb = 2\n")
        #expect(index.line(of: ConfigPath(keys: ["t", "missing"])) == 2)
        #expect(index.line(of: ConfigPath(keys: ["nowhere"])) == nil)
    }
}

import ArgumentParser
import ChorusAnalytics
import ChorusModel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The Gram accumulation of an ALS row solve (ZᵀWZ over a row's gathered observations): Chorus's Swift SIMD
/// kernel against OpenBLAS `cblas_ssyrk` on the same data, single-threaded, at several ranks. OpenBLAS is loaded
/// with dlopen only here (benchmark helper): the product does not link a BLAS.
struct BenchKernels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-als-kernels",
        abstract: "Compare the ALS Gram kernel (Swift SIMD) with OpenBLAS ssyrk at several ranks (benchmark helper).",
        shouldDisplay: false)

    @Option(help: "Ranks to measure, comma-separated.") var ranks = "16,32,64,128"
    @Option(help: "Observations per row (the row's n).") var n = 100
    @Option(help: "Rows per measurement.") var rows = 4000
    @Option(help: "Shared library that provides cblas_ssyrk.") var blas = "libopenblas.so.0"
    @Flag(help: "Print JSON lines.") var json = false

    typealias SSYRK = @convention(c) (Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32, Float,
                                      UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias SetThreads = @convention(c) (Int32) -> Void

    func run() async throws {
        var ssyrk: SSYRK?
        if let h = dlopen(blas, RTLD_NOW) {
            if let s = dlsym(h, "cblas_ssyrk") { ssyrk = unsafeBitCast(s, to: SSYRK.self) }
            if let t = dlsym(h, "openblas_set_num_threads") { unsafeBitCast(t, to: SetThreads.self)(1) }
        } else {
            FileHandle.standardError.write(Data("bench-als-kernels: \(blas) not loadable (apt-get install libopenblas0); Swift only\n".utf8))
        }
        let rankList = ranks.split(separator: ",").compactMap { Int($0) }
        guard !rankList.isEmpty, n > 0, rows > 0 else { throw ValidationError("--ranks, --n and --rows must be positive") }
        for k in rankList {
            let ld = ALSKernels.leading(k)
            var rng = SplitMix64(seed: UInt64(k))
            // One gathered row block, reused: the kernel's cost does not depend on the values.
            var z = [Float](repeating: 0, count: n * ld)
            for t in 0..<n { for q in 0..<k { z[t * ld + q] = Float(rng.gaussian()) } }
            let w = (0..<n).map { _ in Float(1 + rng.unit() * 4) }
            var a = [Float](repeating: 0, count: ld * ld)
            let flops = Double(rows) * Double(n) * Double(k) * Double(k + 1)  // the upper triangle, 2 flops per term
            let swift = time {
                z.withUnsafeBufferPointer { zp in
                    w.withUnsafeBufferPointer { wp in
                        a.withUnsafeMutableBufferPointer { ap in
                            for _ in 0..<rows {
                                ALSKernels.weightedGram(z: zp.baseAddress!, w: wp.baseAddress!, n: n, m: k, ld: ld,
                                                        into: ap.baseAddress!)
                            }
                        }
                    }
                }
            }
            var blasSeconds: Double?
            if let ssyrk {
                var c = [Float](repeating: 0, count: ld * ld)
                var scaled = z
                blasSeconds = time {
                    for _ in 0..<rows {
                        // BLAS has no weighted syrk: scale each row by √w first (part of its cost).
                        for t in 0..<n {
                            let s = w[t].squareRoot()
                            for q in 0..<k { scaled[t * ld + q] = z[t * ld + q] * s }
                        }
                        // C(k×k, upper) += Aᵀ·A with A = n × k, row-major, leading dimension ld.
                        ssyrk(101, 121, 112, Int32(k), Int32(n), 1, scaled, Int32(ld), 1, &c, Int32(ld))
                    }
                }
                // The check: one fresh call of each (the timed loops accumulate `rows` copies in Float, whose
                // rounding depends on the summation order), every upper entry, relative to the largest.
                var one = [Float](repeating: 0, count: ld * ld), blasOne = [Float](repeating: 0, count: ld * ld)
                ALSKernels.weightedGram(z: z, w: w, n: n, m: k, ld: ld, into: &one)
                ssyrk(101, 121, 112, Int32(k), Int32(n), 1, scaled, Int32(ld), 0, &blasOne, Int32(ld))
                var worst: Float = 0, largest: Float = 1
                for p in 0..<k { for q in p..<k {
                    worst = max(worst, abs(one[p * ld + q] - blasOne[p * ld + q]))
                    largest = max(largest, abs(one[p * ld + q]))
                } }
                if worst > 1e-4 * largest {
                    FileHandle.standardError.write(Data("warning: results differ (\(worst) of \(largest), rank \(k))\n".utf8))
                }
            }
            let gs = flops / swift / 1e9
            if json {
                var o: [String: Any] = ["rank": k, "n": n, "rows": rows, "swift_s": swift, "swift_gflops": gs]
                if let b = blasSeconds { o["blas_s"] = b; o["blas_gflops"] = flops / b / 1e9; o["blas_over_swift"] = swift / b }
                print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
            } else if let b = blasSeconds {
                print(String(format: "rank %3d: Swift SIMD %.3f s (%.1f GFLOP/s), OpenBLAS ssyrk %.3f s (%.1f GFLOP/s): BLAS/Swift time %.2f",
                             k, swift, gs, b, flops / b / 1e9, b / swift))
            } else {
                print(String(format: "rank %3d: Swift SIMD %.3f s (%.1f GFLOP/s)", k, swift, gs))
            }
        }
    }

    func time(_ body: () -> Void) -> Double {
        body()  // warm up
        let start = ContinuousClock.now
        body()
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

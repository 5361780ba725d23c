@testable import ChorusJobs
import ChorusModel
import ChorusRuntime
import Foundation
import Testing

/// The `als` job's checks of the broadcasts a worker receives (moved with the job from RequestValidation).
@Suite struct ALSPayloadTests {
    func floats(_ v: [Float]) -> Data { FloatPacking.pack(v) }

    func side(_ name: String = "users", ids: [String], rank: UInt32 = 1, width: UInt32 = 1, factors: [Float]) -> Chorus_V1_Jobs_AlsSide {
        var m = Chorus_V1_Jobs_AlsSide()
        m.side = name; m.ids = ids; m.rank = rank; m.width = width; m.factors = floats(factors)
        return m
    }

    /// The refusal of a broadcast of these sides to a fresh rank-1 (or `rank`) job's worker state, or nil.
    func refusal(_ sides: [Chorus_V1_Jobs_AlsSide], rank: Int = 1, mode: String = "explicit", biases: Bool = false) -> String? {
        var params = ["mode": mode, "rank": String(rank)]
        if !biases { params["biases"] = "false" }
        let state: any JobWorker
        do {
            state = try ALSJob.workerState(WorkerJobInfo(jobID: "job-1", kind: "als", params: JobParams(params), workerName: "w"))
        } catch { return "state: \(error)" }
        var b = Chorus_V1_Jobs_AlsBroadcast()
        b.sides = sides
        do {
            try state.receive(JobBroadcast(jobID: "job-1", stage: "als-users-1", payload: try b.serializedData()))
            return nil
        } catch let e as ChorusError {
            return e.code == .invalidInput ? e.message : "\(e.code): \(e.message)"
        } catch { return "\(error)" }
    }

    @Test func sidesNeedUniqueIdsAndMatchingLengths() {
        #expect(refusal([side(ids: ["", ""], factors: [1, 1])])?
            .contains("job_broadcast.payload.sides[0].ids[1]: duplicate id ''") == true)
        #expect(refusal([side(ids: ["a", "b"], factors: [1])])?
            .contains("job_broadcast.payload.sides[0].factors: 4 bytes for 2 ids × width 1 × 4") == true)
        #expect(refusal([side(ids: ["a"], factors: [.nan])])?.contains("not finite") == true)
        #expect(refusal([side(ids: ["a"], rank: 0, width: 0, factors: [])])?.contains(".rank: 0") == true)
        #expect(refusal([side(ids: ["a"], rank: 2, width: 4, factors: [1, 1, 1, 1])], rank: 2)?.contains(".width") == true)
        #expect(refusal([side("both", ids: ["a"], factors: [1])])?.contains(".side") == true)
        #expect(refusal([side(ids: ["a"], factors: [1]), side(ids: ["b"], factors: [1])])?.contains("duplicate side") == true)
        var gram = side(ids: ["a", "b"], rank: 2, width: 2, factors: [1, 2, 3, 4])
        gram.gram = FloatPacking.packDoubles([1, 2, 3])
        #expect(refusal([gram], rank: 2)?.contains("gram: 24 bytes for rank 2 (must be rank² × 8)") == true)
        gram.gram = FloatPacking.packDoubles([1, 2, 3, 4])
        #expect(refusal([gram], rank: 2) == nil)
        // Without ids (a later broadcast): whole rows only.
        #expect(refusal([side(ids: [], rank: 2, width: 3, factors: [1, 2, 3, 4])], rank: 2, biases: true)?.contains("multiple") == true)
    }

    @Test func sidesMustFitTheirJob() throws {
        let m = side(ids: [], rank: 2, width: 2, factors: [1, 2, 3, 4])
        #expect(throws: ChorusError.self) {
            try ALSPayloads.check(m, field: "f", rank: 4, width: 4, implicit: false, knownIds: nil)
        }
        #expect(throws: ChorusError.self) {  // 2 rows, but 3 ids were sent before
            try ALSPayloads.check(m, field: "f", rank: 2, width: 2, implicit: false, knownIds: 3)
        }
        #expect(throws: ChorusError.self) {  // implicit mode needs the Gram matrix
            try ALSPayloads.check(m, field: "f", rank: 2, width: 2, implicit: true, knownIds: 2)
        }
        try ALSPayloads.check(m, field: "f", rank: 2, width: 2, implicit: false, knownIds: 2)
        // A later broadcast without ids, before the ids reached this worker: unavailable (sent again), not invalid.
        #expect(refusal([side(ids: [], rank: 2, width: 2, factors: [1, 2, 3, 4])], rank: 2)?.hasPrefix("unavailable") == true)
    }

    /// `confidence`: parsed into the confidence offset, and refused where it would make every vector 0.
    @Test func confidenceParameter() throws {
        #expect(try ALSJobConfig(params: ["mode": "implicit"]).als.confidence == .onePlus)
        #expect(try ALSJobConfig(params: ["mode": "implicit", "confidence": "one_plus"]).als.confidence == .onePlus)
        #expect(try ALSJobConfig(params: ["mode": "implicit", "confidence": "linear", "alpha": "2"]).als.confidence == .linear)
        #expect(throws: ChorusError.self) { try ALSJobConfig(params: ["mode": "implicit", "confidence": "squared"]) }
        #expect(throws: ChorusError.self) { try ALSJobConfig(params: ["mode": "implicit", "confidence": "linear", "alpha": "0"]) }
        // With one_plus, alpha 0 is still a valid (unweighted) model.
        #expect(try ALSJobConfig(params: ["mode": "implicit", "alpha": "0"]).als.alpha == 0)
    }
}

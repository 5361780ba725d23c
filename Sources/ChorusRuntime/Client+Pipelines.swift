import ChorusData
import ChorusModel
import ChorusWire
import Foundation

/// Job dependencies and pipelines (docs/pipelines.md).
extension ChorusClient {
    /// Submits a job that starts once the jobs `after` (ids) succeeded.
    public func submit(kind: String, params: [String: String], after: [String]) async throws -> Chorus_V1_JobInfo {
        var s = Chorus_V1_SubmitJob()
        s.kind = kind
        s.params = params
        s.after = after
        guard case let .job(j) = try await coordinator.call(.submitJob(s), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return j
    }

    /// Submits every step of `spec` as one request; the reply names each step's job.
    public func submitPipeline(_ spec: PipelineSpec) async throws -> Chorus_V1_PipelineInfo {
        var p = Chorus_V1_SubmitPipeline()
        p.name = spec.name
        p.steps = spec.steps.map { s in
            var step = Chorus_V1_PipelineStep()
            step.name = s.name
            step.kind = s.kind
            step.params = s.params
            step.after = s.after
            return step
        }
        return try pipeline(try await coordinator.call(.submitPipeline(p), timeout: timeout))
    }

    public func pipelineStatus(_ id: String) async throws -> Chorus_V1_PipelineInfo {
        var r = Chorus_V1_PipelineRef()
        r.id = id
        return try pipeline(try await coordinator.call(.pipelineStatus(r), timeout: timeout))
    }

    public func pipelines(limit: Int) async throws -> [Chorus_V1_PipelineInfo] {
        var l = Chorus_V1_PipelineListRequest()
        l.limit = UInt32(max(0, min(limit, Int(RequestValidation.maxResults))))
        guard case let .pipelineList(list) = try await coordinator.call(.pipelineList(l), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return list.pipelines
    }

    private func pipeline(_ body: ResponseBody) throws -> Chorus_V1_PipelineInfo {
        guard case let .pipeline(p) = body else { throw ChorusError(.internal, "unexpected reply") }
        return p
    }
}

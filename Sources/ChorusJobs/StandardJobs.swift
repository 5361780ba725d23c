import ChorusRuntime

/// Every job kind `chorus` runs. Adding a kind: its folder, its proto file (proto/chorus/v1/jobs/), and one line
/// here (docs/jobs.md).
public enum StandardJobs {
    public static let registry = JobRegistry([
        FeaturesJob.self,
        ALSJob.self,
        TopHashtagsJob.self,
        SentimentTrainJob.self,
        SentimentJob.self,
        ThemesJob.self,
        SegmentsJob.self,
        InfluenceJob.self,
        PropensityJob.self,
        ForecastJob.self,
        BestTimesJob.self,
        ContentInsightsJob.self,
        CampaignPlanJob.self,
        CampaignAudienceJob.self,
        CampaignEvalJob.self,
    ])
}
